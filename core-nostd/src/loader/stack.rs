//! The client's initial stack, laid out as Linux's `execve` leaves it:
//!
//! ```text
//!   top ->  8 zero bytes
//!           AT_EXECFN string, environment strings, argument strings (argv[0] lowest)
//!           (16-byte alignment)  platform string, 16 AT_RANDOM bytes
//!           (padding so that sp is 16-byte aligned)
//!           auxv pairs ... AT_NULL
//!           envp[0] ... NULL
//!           argv[0] ... NULL
//!   sp  ->  argc
//! ```
//!
//! The builder writes into a byte buffer standing for the memory just below `top`, so that it
//! can be tested without mapping anything.

use alloc::vec::Vec;

/// Auxiliary-vector keys (`<elf.h>`).
pub const AT_NULL: u64 = 0;
pub const AT_PHDR: u64 = 3;
pub const AT_PHENT: u64 = 4;
pub const AT_PHNUM: u64 = 5;
pub const AT_PAGESZ: u64 = 6;
pub const AT_BASE: u64 = 7;
pub const AT_FLAGS: u64 = 8;
pub const AT_ENTRY: u64 = 9;
pub const AT_UID: u64 = 11;
pub const AT_EUID: u64 = 12;
pub const AT_GID: u64 = 13;
pub const AT_EGID: u64 = 14;
pub const AT_PLATFORM: u64 = 15;
pub const AT_HWCAP: u64 = 16;
pub const AT_CLKTCK: u64 = 17;
pub const AT_SECURE: u64 = 23;
pub const AT_RANDOM: u64 = 25;
pub const AT_HWCAP2: u64 = 26;
pub const AT_EXECFN: u64 = 31;
pub const AT_MINSIGSTKSZ: u64 = 51;

/// What goes on the stack. In `auxv`, the values of `AT_PLATFORM`, `AT_RANDOM` and `AT_EXECFN`
/// are ignored: the builder stores the strings and bytes and fills in their addresses. `AT_NULL`
/// is appended.
pub struct StackContents<'a> {
    /// argv, including argv[0].
    pub argv: &'a [&'a str],
    pub envp: &'a [&'a str],
    pub execfn: &'a str,
    pub platform: &'a str,
    pub random: [u8; 16],
    pub auxv: &'a [(u64, u64)],
}

/// The stack does not fit in the buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StackTooSmall;

/// Writes downwards into `mem`, which stands for the addresses `[top - mem.len(), top)`.
struct Writer<'m> {
    mem: &'m mut [u8],
    top: u64,
    p: u64,
}

impl Writer<'_> {
    fn low(&self) -> u64 {
        self.top - self.mem.len() as u64
    }
    /// Make room for `n` bytes below the cursor; returns their address.
    fn reserve(&mut self, n: u64) -> Result<u64, StackTooSmall> {
        let p = self.p.checked_sub(n).filter(|&p| p >= self.low()).ok_or(StackTooSmall)?;
        self.p = p;
        Ok(p)
    }
    fn put(&mut self, addr: u64, bytes: &[u8]) {
        let i = (addr - self.low()) as usize;
        self.mem[i..i + bytes.len()].copy_from_slice(bytes);
    }
    fn push_bytes(&mut self, bytes: &[u8]) -> Result<u64, StackTooSmall> {
        let a = self.reserve(bytes.len() as u64)?;
        self.put(a, bytes);
        Ok(a)
    }
    fn push_cstr(&mut self, s: &str) -> Result<u64, StackTooSmall> {
        let a = self.reserve(s.len() as u64 + 1)?;
        self.put(a, s.as_bytes());
        self.put(a + s.len() as u64, &[0]);
        Ok(a)
    }
    fn align_down(&mut self, to: u64) -> Result<(), StackTooSmall> {
        let p = self.p & !(to - 1);
        if p < self.low() {
            return Err(StackTooSmall);
        }
        self.p = p;
        Ok(())
    }
}

/// Build the initial stack in `mem` (the memory below `top`, `top` 16-byte aligned); returns
/// the initial stack pointer (pointing at argc, 16-byte aligned).
pub fn build_stack(mem: &mut [u8], top: u64, c: &StackContents<'_>) -> Result<u64, StackTooSmall> {
    let mut w = Writer { mem, top, p: top };
    w.push_bytes(&[0; 8])?;
    let execfn = w.push_cstr(c.execfn)?;
    // Strings are stored from the last to the first, as the kernel copies them.
    let mut envp: Vec<u64> = c.envp.iter().rev().map(|s| w.push_cstr(s)).collect::<Result<_, _>>()?;
    envp.reverse();
    let mut argv: Vec<u64> = c.argv.iter().rev().map(|s| w.push_cstr(s)).collect::<Result<_, _>>()?;
    argv.reverse();
    w.align_down(16)?;
    let platform = w.push_cstr(c.platform)?;
    let random = w.push_bytes(&c.random)?;

    let mut words: Vec<u64> = Vec::with_capacity(3 + argv.len() + envp.len() + 2 * c.auxv.len() + 2);
    words.push(argv.len() as u64);
    words.extend_from_slice(&argv);
    words.push(0);
    words.extend_from_slice(&envp);
    words.push(0);
    for &(k, v) in c.auxv {
        let v = match k {
            AT_PLATFORM => platform,
            AT_RANDOM => random,
            AT_EXECFN => execfn,
            _ => v,
        };
        words.extend_from_slice(&[k, v]);
    }
    words.extend_from_slice(&[AT_NULL, 0]);

    let sp = w.p.checked_sub(8 * words.len() as u64).ok_or(StackTooSmall)? & !15;
    if sp < w.low() {
        return Err(StackTooSmall);
    }
    for (i, word) in words.iter().enumerate() {
        w.put(sp + 8 * i as u64, &word.to_le_bytes());
    }
    Ok(sp)
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;

    const TOP: u64 = 0x7000_0000;

    fn word(mem: &[u8], addr: u64) -> u64 {
        let i = (addr - (TOP - mem.len() as u64)) as usize;
        u64::from_le_bytes(mem[i..i + 8].try_into().unwrap())
    }
    fn cstr(mem: &[u8], addr: u64) -> std::string::String {
        let i = (addr - (TOP - mem.len() as u64)) as usize;
        let n = mem[i..].iter().position(|&b| b == 0).unwrap();
        std::string::String::from_utf8(mem[i..i + n].to_vec()).unwrap()
    }

    #[test]
    fn layout_matches_the_kernel() {
        let mut mem = std::vec![0xaau8; 4096];
        let random = [7u8; 16];
        let auxv = [(AT_PAGESZ, 4096), (AT_RANDOM, 0), (AT_EXECFN, 0), (AT_PLATFORM, 0), (AT_ENTRY, 0x401000)];
        let c = StackContents {
            argv: &["./prog", "a", "bc"],
            envp: &["HOME=/root", "X=1"],
            execfn: "./prog",
            platform: "x86_64",
            random,
            auxv: &auxv,
        };
        let sp = build_stack(&mut mem, TOP, &c).unwrap();
        assert_eq!(sp % 16, 0);
        assert_eq!(word(&mem, sp), 3, "argc");
        let args: std::vec::Vec<_> = (0..3).map(|i| cstr(&mem, word(&mem, sp + 8 + 8 * i))).collect();
        assert_eq!(args, ["./prog", "a", "bc"]);
        assert_eq!(word(&mem, sp + 32), 0, "argv NULL");
        assert_eq!(cstr(&mem, word(&mem, sp + 40)), "HOME=/root");
        assert_eq!(cstr(&mem, word(&mem, sp + 48)), "X=1");
        assert_eq!(word(&mem, sp + 56), 0, "envp NULL");
        let mut at = sp + 64;
        let mut aux = std::vec::Vec::new();
        loop {
            let (k, v) = (word(&mem, at), word(&mem, at + 8));
            aux.push((k, v));
            at += 16;
            if k == AT_NULL {
                break;
            }
        }
        assert_eq!(aux.len(), 6);
        assert_eq!(aux[0], (AT_PAGESZ, 4096));
        assert_eq!(aux[4], (AT_ENTRY, 0x401000));
        assert_eq!(aux[5], (AT_NULL, 0));
        let rnd = aux[1].1;
        let i = (rnd - (TOP - 4096)) as usize;
        assert_eq!(mem[i..i + 16], random);
        assert_eq!(cstr(&mem, aux[2].1), "./prog");
        assert_eq!(cstr(&mem, aux[3].1), "x86_64");
        // Strings sit above the tables; the execfn copy is the highest, below 8 zero bytes.
        assert_eq!(aux[2].1, TOP - 8 - 7);
        assert_eq!(word(&mem, TOP - 8), 0);
        assert!(rnd >= at && rnd < word(&mem, sp + 8));
        // argv[0]'s string is the lowest of the argument strings, env strings above them.
        assert!(word(&mem, sp + 8) < word(&mem, sp + 16) && word(&mem, sp + 24) < word(&mem, sp + 40));
    }

    #[test]
    fn sp_is_aligned_for_any_string_lengths() {
        for extra in 0..20 {
            let arg = "x".repeat(extra);
            let argv = ["p", arg.as_str()];
            let mut mem = std::vec![0u8; 2048];
            let c = StackContents { argv: &argv, envp: &[], execfn: "p", platform: "x86_64", random: [0; 16], auxv: &[] };
            let sp = build_stack(&mut mem, TOP, &c).unwrap();
            assert_eq!(sp % 16, 0);
            assert_eq!(word(&mem, sp), 2);
        }
    }

    #[test]
    fn too_small_a_buffer_is_an_error() {
        let big = "y".repeat(500);
        let argv = [big.as_str(), big.as_str()];
        let mut mem = std::vec![0u8; 512];
        let c = StackContents { argv: &argv, envp: &[], execfn: "p", platform: "x86_64", random: [0; 16], auxv: &[] };
        assert_eq!(build_stack(&mut mem, TOP, &c), Err(StackTooSmall));
    }
}
