//! Z-encoding of sonames and function names, the escape scheme `valgrind.h` and tools use to put
//! characters such as `.`, `*` or `-` into C identifiers (`libcZdsoZa` is `libc.so*`).

use alloc::string::String;

/// The escapes: encoded letter after `Z`, and the character it stands for.
const ESCAPES: [(u8, char); 11] = [
    (b'a', '*'),
    (b'p', '+'),
    (b'c', ':'),
    (b'd', '.'),
    (b'u', '_'),
    (b'h', '-'),
    (b's', ' '),
    (b'A', '@'),
    (b'Z', 'Z'),
    (b'L', '('),
    (b'R', ')'),
];

/// Encodes `name`: every character with an escape becomes `Z` + its letter; others are kept.
pub fn z_encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 8);
    for ch in name.chars() {
        match ESCAPES.iter().find(|(_, c)| *c == ch) {
            Some((letter, _)) => {
                out.push('Z');
                out.push(*letter as char);
            }
            None => out.push(ch),
        }
    }
    out
}

/// Decodes a Z-encoded name; `None` if a `Z` is followed by an unknown letter or ends the name.
pub fn z_decode(encoded: &str) -> Option<String> {
    let mut out = String::with_capacity(encoded.len());
    let mut chars = encoded.chars();
    while let Some(ch) = chars.next() {
        if ch != 'Z' {
            out.push(ch);
            continue;
        }
        let letter = chars.next()?;
        let (_, decoded) = ESCAPES.iter().find(|(l, _)| *l as char == letter)?;
        out.push(*decoded);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_every_escape() {
        assert_eq!(z_decode("ZaZpZcZdZuZhZsZAZZZLZR").as_deref(), Some("*+:._- @Z()"));
        assert_eq!(z_decode("libcZdsoZa").as_deref(), Some("libc.so*"));
        assert_eq!(z_decode("NONE").as_deref(), Some("NONE"));
    }

    #[test]
    fn rejects_bad_escapes() {
        assert_eq!(z_decode("libcZ"), None);
        assert_eq!(z_decode("aZqb"), None);
    }

    #[test]
    fn encode_roundtrips() {
        for s in ["libpthread.so.0", "operator new(unsigned long)", "a_b-c@GLIBC_2.2.5", "Zed*"] {
            let e = z_encode(s);
            assert!(e.chars().all(|c| c.is_ascii_alphanumeric()), "{e}");
            assert_eq!(z_decode(&e).as_deref(), Some(s));
        }
        assert_eq!(z_encode("libc.so*"), "libcZdsoZa");
    }
}
