//! Redirection specifications and the active set: which code addresses are redirected where,
//! computed from the tool's specifications, the wrapper/replacement symbols found in loaded
//! objects, and the objects' symbol tables. Pure logic: the caller recomputes it on every mapping
//! and unmapping of code and hands the result to the translator.

use alloc::string::String;
use alloc::vec::Vec;

use super::names::{RedirKind, parse_spec_name};
use super::pattern::wildcard_match;

/// Soname given to objects that have none (the main executable, usually): specs say `NONE`.
pub const NO_SONAME: &str = "NONE";

/// Soname patterns starting with this are placeholders resolved through `--soname-synonyms=`.
pub const SYNONYM_PREFIX: &str = "VgSoSyn";

/// One specification: calls to functions matching (soname, fnname) go to `to_addr`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedirSpec {
    pub kind: RedirKind,
    pub eclass: u16,
    pub priority: u8,
    pub soname: String,
    pub fnname: String,
    /// Address of the replacement/wrapper code.
    pub to_addr: u64,
    /// Where the spec came from (an object's path, or the tool's name), for `--trace-redir`.
    pub origin: String,
}

/// What the redirector needs of a loaded object.
#[derive(Clone, Copy, Debug)]
pub struct ObjectSymbols<'a> {
    /// Caller's identity for the object (e.g. its mapping id).
    pub id: u64,
    pub soname: Option<&'a str>,
    pub path: &'a str,
    /// Function symbols: (name, run-time address).
    pub symbols: &'a [(String, u64)],
}

/// A redirection in force.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActiveRedir {
    pub from_addr: u64,
    /// Object and symbol name at `from_addr` (the first symbol that matched).
    pub from_obj: u64,
    pub from_name: String,
    pub to_addr: u64,
    pub kind: RedirKind,
    /// Index of the winning spec in the list given to [`compute_active`].
    pub spec: usize,
}

/// Two specs of different behaviour wanted the same address; the first one was kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedirConflict {
    pub from_addr: u64,
    pub from_name: String,
    pub kept: usize,
    pub dropped: usize,
}

/// The active set, sorted by `from_addr`.
#[derive(Clone, Debug, Default)]
pub struct ActiveSet {
    pub redirs: Vec<ActiveRedir>,
    pub conflicts: Vec<RedirConflict>,
}

impl ActiveSet {
    /// The redirection of a call to `addr`, if any.
    pub fn lookup(&self, addr: u64) -> Option<&ActiveRedir> {
        self.redirs.binary_search_by_key(&addr, |r| r.from_addr).ok().map(|i| &self.redirs[i])
    }
}

/// The wrapper/replacement specifications an object carries in its own symbol table.
pub fn specs_from_object(obj: &ObjectSymbols<'_>) -> Vec<RedirSpec> {
    obj.symbols
        .iter()
        .filter_map(|(name, addr)| {
            let n = parse_spec_name(name)?;
            Some(RedirSpec {
                kind: n.kind,
                eclass: n.eclass,
                priority: n.priority,
                soname: n.soname,
                fnname: n.fnname,
                to_addr: *addr,
                origin: String::from(obj.path),
            })
        })
        .collect()
}

/// Parses `--soname-synonyms=tag=pattern,tag2=pattern2` into (tag, pattern) pairs; `None` if an
/// entry lacks its `=`.
pub fn parse_soname_synonyms(value: &str) -> Option<Vec<(String, String)>> {
    value
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|entry| {
            let (tag, pat) = entry.split_once('=')?;
            Some((String::from(tag), String::from(pat)))
        })
        .collect()
}

/// The soname pattern a spec actually uses: synonym placeholders are replaced by their
/// `--soname-synonyms=` pattern, and a placeholder without one disables the spec (`None`).
fn effective_soname<'a>(spec: &'a RedirSpec, synonyms: &'a [(String, String)]) -> Option<&'a str> {
    match spec.soname.strip_prefix(SYNONYM_PREFIX) {
        Some(tag) => synonyms.iter().find(|(t, _)| t == tag).map(|(_, p)| p.as_str()),
        None => Some(spec.soname.as_str()),
    }
}

/// Computes the active set: for each spec (in order), every symbol of every object whose soname
/// and name match. When several specs hit one address: same non-zero class -> the higher priority
/// wins (the first on a tie); otherwise the first is kept and a conflict is recorded.
pub fn compute_active(
    objects: &[ObjectSymbols<'_>],
    specs: &[RedirSpec],
    synonyms: &[(String, String)],
) -> ActiveSet {
    let mut hits: Vec<ActiveRedir> = Vec::new();
    for (si, spec) in specs.iter().enumerate() {
        let Some(so_pat) = effective_soname(spec, synonyms) else { continue };
        for obj in objects {
            if !wildcard_match(so_pat, obj.soname.unwrap_or(NO_SONAME)) {
                continue;
            }
            for (name, addr) in obj.symbols {
                // Wrapper symbols never match as targets: a `*` pattern would redirect them too.
                if parse_spec_name(name).is_some() || !wildcard_match(&spec.fnname, name) {
                    continue;
                }
                hits.push(ActiveRedir {
                    from_addr: *addr,
                    from_obj: obj.id,
                    from_name: name.clone(),
                    to_addr: spec.to_addr,
                    kind: spec.kind,
                    spec: si,
                });
            }
        }
    }
    // Stable sort keeps spec order among hits on one address.
    hits.sort_by_key(|h| h.from_addr);
    let mut set = ActiveSet::default();
    for hit in hits {
        let Some(cur) = set.redirs.last_mut().filter(|c| c.from_addr == hit.from_addr) else {
            set.redirs.push(hit);
            continue;
        };
        if cur.spec == hit.spec {
            continue; // The same spec through an alias symbol.
        }
        let (a, b) = (&specs[cur.spec], &specs[hit.spec]);
        if a.eclass != 0 && a.eclass == b.eclass {
            if b.priority > a.priority {
                *cur = hit;
            }
        } else if a.to_addr != b.to_addr {
            set.conflicts.push(RedirConflict {
                from_addr: hit.from_addr,
                from_name: hit.from_name,
                kept: cur.spec,
                dropped: hit.spec,
            });
        }
    }
    set
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn syms(list: &[(&str, u64)]) -> Vec<(String, u64)> {
        list.iter().map(|(n, a)| (String::from(*n), *a)).collect()
    }

    #[test]
    fn wrapper_in_main_exe_and_library() {
        let exe = syms(&[("main", 0x1000), ("foo", 0x1100), ("_vgw00000ZU_NONE_foo", 0x1200),
                         ("_vgw00000ZU_libbarZdsoZa_bar", 0x1300)]);
        let lib = syms(&[("bar", 0x7000_1000), ("foo", 0x7000_2000)]);
        let objs = [
            ObjectSymbols { id: 1, soname: None, path: "/tmp/prog", symbols: &exe },
            ObjectSymbols { id: 2, soname: Some("libbar.so.1"), path: "/tmp/libbar.so.1", symbols: &lib },
        ];
        let specs = specs_from_object(&objs[0]);
        assert_eq!(specs.len(), 2);
        let set = compute_active(&objs, &specs, &[]);
        assert_eq!(set.redirs.len(), 2, "{:?}", set.redirs);
        let foo = set.lookup(0x1100).unwrap();
        assert_eq!((foo.to_addr, foo.kind, foo.from_obj), (0x1200, RedirKind::Wrap, 1));
        // `foo` in the library has a soname, so `NONE` does not match it.
        assert!(set.lookup(0x7000_2000).is_none());
        assert_eq!(set.lookup(0x7000_1000).unwrap().to_addr, 0x1300);
        assert!(set.conflicts.is_empty());
    }

    #[test]
    fn classes_priorities_and_conflicts() {
        let lib = syms(&[("memcpy", 0x10), ("memmove", 0x20), ("strlen", 0x30)]);
        let objs = [ObjectSymbols { id: 7, soname: Some("libc.so.6"), path: "/lib/libc.so.6", symbols: &lib }];
        let spec = |eclass, priority, fnname: &str, to| RedirSpec {
            kind: RedirKind::Replace, eclass, priority, soname: String::from("libc.so*"),
            fnname: String::from(fnname), to_addr: to, origin: String::from("tool"),
        };
        let specs = vec![
            spec(2018, 0, "mem*", 0x100),  // memcpy's
            spec(2018, 1, "memmove", 0x200), // preferred over the class-mate for memmove
            spec(0, 0, "strlen", 0x300),
            spec(0, 0, "str*", 0x400),     // conflicts with the previous one
        ];
        let set = compute_active(&objs, &specs, &[]);
        assert_eq!(set.lookup(0x10).unwrap().to_addr, 0x100);
        assert_eq!(set.lookup(0x20).unwrap().to_addr, 0x200);
        assert_eq!(set.lookup(0x30).unwrap().to_addr, 0x300);
        assert_eq!(set.conflicts, vec![RedirConflict { from_addr: 0x30, from_name: String::from("strlen"), kept: 2, dropped: 3 }]);
    }

    #[test]
    fn soname_synonyms() {
        let lib = syms(&[("malloc", 0x50)]);
        let objs = [ObjectSymbols { id: 1, soname: Some("libtcmalloc.so.4"), path: "/x", symbols: &lib }];
        let specs = vec![RedirSpec {
            kind: RedirKind::Replace, eclass: 1001, priority: 0, soname: String::from("VgSoSynsomalloc"),
            fnname: String::from("malloc"), to_addr: 0x900, origin: String::from("tool"),
        }];
        assert!(compute_active(&objs, &specs, &[]).redirs.is_empty());
        let syn = parse_soname_synonyms("somalloc=*tcmalloc*").unwrap();
        assert_eq!(compute_active(&objs, &specs, &syn).lookup(0x50).unwrap().to_addr, 0x900);
        assert!(parse_soname_synonyms("somalloc").is_none());
    }
}
