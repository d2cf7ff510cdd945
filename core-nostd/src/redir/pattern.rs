//! Wildcard matching of names: `*` matches any run of characters (also none), `?` exactly one.
//! Used for soname/function patterns of redirections and for suppression frame patterns.

/// Whether `name` matches `pattern` as a whole.
pub fn wildcard_match(pattern: &str, name: &str) -> bool {
    let p = pattern.as_bytes();
    let s = name.as_bytes();
    // Iterative matcher with one backtrack point (the last `*`): linear in practice, no recursion.
    let (mut pi, mut si) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, si));
            pi += 1;
        } else if pi < p.len() && (p[pi] == b'?' || p[pi] == s[si]) {
            // `?` consumes one whole UTF-8 character, not one byte.
            if p[pi] == b'?' {
                si += utf8_len(s[si]);
            } else {
                si += 1;
            }
            pi += 1;
        } else if let Some((sp, ss)) = star {
            let next = ss + utf8_len(s[ss]);
            star = Some((sp, next));
            pi = sp + 1;
            si = next;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len() && si == s.len()
}

fn utf8_len(first: u8) -> usize {
    match first {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::wildcard_match as m;

    #[test]
    fn literals_and_wildcards() {
        assert!(m("foo", "foo"));
        assert!(!m("foo", "foobar"));
        assert!(m("foo*", "foobar"));
        assert!(m("*bar", "foobar"));
        assert!(m("f*o*r", "foobar"));
        assert!(!m("f*o*z", "foobar"));
        assert!(m("*", ""));
        assert!(!m("?", ""));
        assert!(m("fo?bar", "foobar"));
        assert!(!m("fo?bar", "fobar"));
        assert!(m("libc.so*", "libc.so.6"));
        assert!(m("*libc_write", "__libc_write"));
        assert!(m("a*b*c", "axxbyybzzc"));
        assert!(!m("a*b*c", "axxbyybzz"));
        assert!(m("?é", "xé"));
    }
}
