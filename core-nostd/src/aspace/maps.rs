//! Parsing `/proc/self/maps` lines (`start-end perms offset dev inode   path`).

use super::sys::{PROT_EXEC, PROT_READ, PROT_WRITE};

/// One line of `/proc/self/maps`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapsEntry<'a> {
    pub start: u64,
    /// Exclusive end.
    pub end: u64,
    /// `PROT_*` bits.
    pub prot: u32,
    pub offset: u64,
    pub inode: u64,
    /// The path or pseudo-name ("[stack]", "[vdso]"); empty for anonymous mappings.
    pub name: &'a str,
}

/// Parse one line; `None` if it is malformed.
pub fn parse_maps_line(line: &str) -> Option<MapsEntry<'_>> {
    let mut rest = line.trim_start();
    let mut field = || {
        let s = rest.trim_start();
        let end = s.find(' ').unwrap_or(s.len());
        let (f, r) = s.split_at(end);
        rest = r;
        f
    };
    let range = field();
    let perms = field().as_bytes();
    let offset = u64::from_str_radix(field(), 16).ok()?;
    let _dev = field();
    let inode = field().parse::<u64>().ok()?;
    let name = rest.trim();
    let (s, e) = range.split_once('-')?;
    let (start, end) = (u64::from_str_radix(s, 16).ok()?, u64::from_str_radix(e, 16).ok()?);
    if perms.len() < 3 || start >= end {
        return None;
    }
    let mut prot = 0;
    if perms[0] == b'r' {
        prot |= PROT_READ;
    }
    if perms[1] == b'w' {
        prot |= PROT_WRITE;
    }
    if perms[2] == b'x' {
        prot |= PROT_EXEC;
    }
    Some(MapsEntry { start, end, prot, offset, inode, name })
}
