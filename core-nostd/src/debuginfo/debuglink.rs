//! Finding an object's separate debug file: by build-id under `/usr/lib/debug/.build-id/`, then by
//! its `.gnu_debuglink` name beside the object, in its `.debug/` subdirectory and under
//! `/usr/lib/debug/<dir>/`. A candidate is accepted only if its build-id or CRC-32 matches.

use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use super::{FileBytes, FileReader};
use super::elf::{ElfInfo, crc32};

/// The root of the separate debug-file tree.
pub const DEBUG_ROOT: &str = "/usr/lib/debug";

/// A separate debug file, mapped and its headers parsed.
#[derive(Debug)]
pub struct DebugFile {
    pub path: String,
    pub bytes: Arc<FileBytes>,
    pub info: ElfInfo,
}

/// Candidate paths, in search order, each with whether it was derived from the build-id.
pub fn candidates(obj_path: &str, info: &ElfInfo, root: &str) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    if let Some(id) = info.build_id.as_deref().filter(|id| id.len() >= 2) {
        let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
        out.push((format!("{root}/.build-id/{}/{}.debug", &hex[..2], &hex[2..]), true));
    }
    if let Some((name, _)) = &info.debuglink {
        let dir = obj_path.rfind('/').map_or("", |i| &obj_path[..i]);
        out.push((format!("{dir}/{name}"), false));
        out.push((format!("{dir}/.debug/{name}"), false));
        out.push((format!("{root}{dir}/{name}"), false));
    }
    out
}

/// Searches for and reads the debug file of `obj_path` (whose headers are `info`).
pub fn find_debug_file(reader: &mut dyn FileReader, obj_path: &str, info: &ElfInfo, root: &str) -> Option<DebugFile> {
    for (path, by_build_id) in candidates(obj_path, info, root) {
        // The object itself can be its own debuglink candidate (`dir/name` with the same name).
        if path == obj_path {
            continue;
        }
        let Some(bytes) = reader.read_file(&path) else { continue };
        let Some(dinfo) = ElfInfo::parse(&bytes) else { continue };
        let matches = if by_build_id {
            dinfo.build_id == info.build_id
        } else {
            info.debuglink.as_ref().is_some_and(|(_, crc)| crc32(&bytes) == *crc)
        };
        if matches {
            return Some(DebugFile { path, bytes: Arc::new(bytes), info: dinfo });
        }
    }
    None
}
