//! The core's allocator: named arenas on mmap'd superblocks, with statistics (`--stats=yes`).
