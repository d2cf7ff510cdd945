//! Parsing of wrapper and replacement symbol names as `valgrind.h`'s `I_WRAP_SONAME_FNNAME_ZU/ZZ`
//! and `I_REPLACE_SONAME_FNNAME_ZU/ZZ` build them: `_vg` + `w`|`r` + five digits (a four-digit
//! behavioural equivalence class and a one-digit priority) + `ZU`|`ZZ` + `_` + Z-encoded soname
//! pattern + `_` + function pattern (Z-encoded for `ZZ`, literal for `ZU`).

use alloc::string::String;

use super::zenc::z_decode;

/// What a specification does to calls of the functions it matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RedirKind {
    /// The function is replaced; the original is unreachable from the replacement.
    Replace,
    /// The function is wrapped; the wrapper reaches the original with `VALGRIND_GET_ORIG_FN`.
    Wrap,
}

/// A decoded wrapper/replacement symbol name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecName {
    pub kind: RedirKind,
    /// Behavioural equivalence class; 0 means "none": conflicts are then reported.
    pub eclass: u16,
    /// Within one class, the higher priority wins.
    pub priority: u8,
    /// Soname pattern (`*`, `?` wildcards); `NONE` matches objects without a soname.
    pub soname: String,
    /// Function-name pattern.
    pub fnname: String,
}

/// Decodes `sym` if it is a wrapper/replacement name; `None` for ordinary symbols and for
/// malformed ones (bad digits, missing separator, bad Z escape).
pub fn parse_spec_name(sym: &str) -> Option<SpecName> {
    let rest = sym.strip_prefix("_vg")?;
    let bytes = rest.as_bytes();
    if bytes.len() < 1 + 5 + 2 {
        return None;
    }
    let kind = match bytes[0] {
        b'r' => RedirKind::Replace,
        b'w' => RedirKind::Wrap,
        _ => return None,
    };
    let digits = rest.get(1..6)?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let eclass: u16 = digits[..4].parse().ok()?;
    let priority = digits.as_bytes()[4] - b'0';
    // `get` rather than indexing: a non-ASCII byte here must reject the name, not panic.
    let fn_encoded = match rest.get(6..8)? {
        "ZU" => false,
        "ZZ" => true,
        _ => return None,
    };
    let body = rest.get(8..)?;
    let body = body.strip_prefix('_')?;
    // The encoded soname has no literal '_' (it is `Zu`), so the first '_' ends it.
    let sep = body.find('_')?;
    let soname = z_decode(&body[..sep])?;
    let fn_part = &body[sep + 1..];
    if soname.is_empty() || fn_part.is_empty() {
        return None;
    }
    let fnname = if fn_encoded { z_decode(fn_part)? } else { String::from(fn_part) };
    Some(SpecName { kind, eclass, priority, soname, fnname })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_macro_forms() {
        // I_WRAP_SONAME_FNNAME_ZU(NONE, foo)
        let w = parse_spec_name("_vgw00000ZU_NONE_foo").unwrap();
        assert_eq!((w.kind, w.eclass, w.priority), (RedirKind::Wrap, 0, 0));
        assert_eq!((w.soname.as_str(), w.fnname.as_str()), ("NONE", "foo"));
        // I_WRAP_SONAME_FNNAME_ZU(libpthreadZdsoZd0, pthread_create) keeps the fn's '_'.
        let p = parse_spec_name("_vgw00000ZU_libpthreadZdsoZd0_pthread_create").unwrap();
        assert_eq!((p.soname.as_str(), p.fnname.as_str()), ("libpthread.so.0", "pthread_create"));
        // I_REPLACE_SONAME_FNNAME_ZZ(libcZdsoZa, mallocZa)
        let r = parse_spec_name("_vgr00000ZZ_libcZdsoZa_mallocZa").unwrap();
        assert_eq!(r.kind, RedirKind::Replace);
        assert_eq!((r.soname.as_str(), r.fnname.as_str()), ("libc.so*", "malloc*"));
    }

    #[test]
    fn class_and_priority() {
        let r = parse_spec_name("_vgr20181ZU_libcZdsoZa_memmove").unwrap();
        assert_eq!((r.eclass, r.priority), (2018, 1));
        assert_eq!(r.fnname, "memmove");
    }

    #[test]
    fn rejects_non_specs() {
        for s in ["main", "_vgx00000ZU_NONE_foo", "_vgw0000aZU_NONE_foo", "_vgw00000ZX_NONE_foo",
                  "_vgw00000ZU_NONEfoo", "_vgw00000ZU__foo", "_vgw00000ZU_NONE_", "_vgr00000ZZ_NONE_fZq",
                  "_vgw0", "_vgw00000Zé_NONE_foo", "_vgw0000é"] {
            assert_eq!(parse_spec_name(s), None, "{s}");
        }
    }
}
