//! Execution contexts: stacks (lists of code addresses) interned in a table, so errors and heap
//! blocks that share a stack share one id and comparing stacks is comparing ids.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

/// An interned stack. Ids are dense and stable; Valgrind's "unique" numbers derive from them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ExeContextId(pub u32);

/// The table of all stacks seen.
#[derive(Debug, Default)]
pub struct ExeContextTable {
    stacks: Vec<Vec<u64>>,
    /// Hash of the pc list -> ids with that hash.
    by_hash: BTreeMap<u64, Vec<u32>>,
}

/// FNV-1a over the addresses: cheap and good enough to spread stacks over buckets.
fn hash_ips(ips: &[u64]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for ip in ips {
        for b in ip.to_le_bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

impl ExeContextTable {
    pub fn new() -> ExeContextTable {
        ExeContextTable::default()
    }

    /// The id of stack `ips`, adding it if new.
    pub fn intern(&mut self, ips: &[u64]) -> ExeContextId {
        let bucket = self.by_hash.entry(hash_ips(ips)).or_default();
        if let Some(&id) = bucket.iter().find(|&&id| self.stacks[id as usize] == ips) {
            return ExeContextId(id);
        }
        let id = self.stacks.len() as u32;
        self.stacks.push(ips.to_vec());
        bucket.push(id);
        ExeContextId(id)
    }

    /// The addresses of a context.
    pub fn ips(&self, id: ExeContextId) -> &[u64] {
        &self.stacks[id.0 as usize]
    }

    /// Whether two contexts agree on their first `n` addresses (`--leak-resolution`-style
    /// comparison); with `n` >= both lengths this is equality.
    pub fn same_prefix(&self, a: ExeContextId, b: ExeContextId, n: usize) -> bool {
        let (x, y) = (self.ips(a), self.ips(b));
        let (x, y) = (&x[..x.len().min(n)], &y[..y.len().min(n)]);
        x == y
    }

    pub fn len(&self) -> usize {
        self.stacks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.stacks.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dedups_stacks() {
        let mut t = ExeContextTable::new();
        let a = t.intern(&[1, 2, 3]);
        let b = t.intern(&[1, 2, 4]);
        let c = t.intern(&[1, 2, 3]);
        assert_eq!(a, c);
        assert_ne!(a, b);
        assert_eq!(t.len(), 2);
        assert_eq!(t.ips(b), &[1, 2, 4]);
        assert!(t.same_prefix(a, b, 2));
        assert!(!t.same_prefix(a, b, 3));
        let e = t.intern(&[]);
        assert_eq!(t.ips(e), &[] as &[u64]);
    }
}
