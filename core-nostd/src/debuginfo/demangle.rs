//! Names as users see them: wrapper/replacement symbols shown as the function they stand for
//! (always, as Valgrind does), then Rust and C++ (Itanium) demangling unless `--demangle=no`.

use alloc::borrow::Cow;
use alloc::format;
use alloc::string::String;

use crate::redir::parse_spec_name;

/// The display form of a symbol name.
pub fn demangle(name: &str, cxx_and_rust: bool) -> Cow<'_, str> {
    if let Some(spec) = parse_spec_name(name) {
        return Cow::Owned(spec.fnname);
    }
    if !cxx_and_rust {
        return Cow::Borrowed(name);
    }
    if let Ok(d) = rustc_demangle::try_demangle(name) {
        // `{:#}` drops the legacy scheme's hash suffix.
        return Cow::Owned(format!("{d:#}"));
    }
    if name.starts_with("_Z")
        && let Some(s) = demangle_cxx(name) {
            return Cow::Owned(s);
        }
    Cow::Borrowed(name)
}

fn demangle_cxx(name: &str) -> Option<String> {
    let sym = cpp_demangle::Symbol::new(name.as_bytes()).ok()?;
    sym.demangle().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cxx() {
        assert_eq!(demangle("_Z3fooi", true), "foo(int)");
        assert_eq!(demangle("_ZN2ns3BarC2Ev", true), "ns::Bar::Bar()");
        assert_eq!(demangle("_Znwm", true), "operator new(unsigned long)");
        assert_eq!(demangle("_Z3fooi", false), "_Z3fooi");
        assert_eq!(demangle("main", true), "main");
        assert_eq!(demangle("_Zbogus", true), "_Zbogus");
    }

    #[test]
    fn rust() {
        assert_eq!(demangle("_ZN4core3fmt5write17h0123456789abcdefE", true), "core::fmt::write");
        assert_eq!(demangle("_RNvCs1234_7mycrate3foo", true), "mycrate::foo");
    }

    #[test]
    fn wrapper_names_always() {
        assert_eq!(demangle("_vgr10010ZU_libcZdsoZa_malloc", false), "malloc");
        assert_eq!(demangle("_vgw00000ZU_NONE_foo", true), "foo");
    }
}
