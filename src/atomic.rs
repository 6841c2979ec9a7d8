//! Atomic file writes: a temporary file in the same folder, synced, then renamed over the
//! target, so a reader never sees half a file and a crash never loses the previous one.

use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};

/// Writes `bytes` to `path` atomically, creating the parent folder if needed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::write(dir, e))?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("out");
    let tmp = dir.join(temp_name(name, std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()
    };
    if let Err(e) = write() {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::write(&tmp, e));
    }
    std::fs::rename(&tmp, path).map_err(|e| Error::write(path, e))
}

/// The temporary file a write of `name` by process `pid` goes through: `.NAME.PID.tmp`.
fn temp_name(name: &str, pid: u32) -> String {
    format!(".{name}.{pid}.tmp")
}

/// Whether `name` has the shape of [`write_atomic`]'s temporary files (left behind only when
/// the writing process was killed).
pub fn is_temp_name(name: &str) -> bool {
    let Some(stem) = name.strip_prefix('.').and_then(|n| n.strip_suffix(".tmp")) else {
        return false;
    };
    stem.rsplit_once('.').is_some_and(|(target, pid)| {
        !target.is_empty() && !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_temp_names_match() {
        assert!(is_temp_name(&temp_name("checkpoint.bin", 12)));
        assert!(is_temp_name(".log.csv.7.tmp"));
        for no in [
            "checkpoint.bin.12.tmp",
            ".checkpoint.bin.tmp",
            ".x.12a.tmp",
            ".12.tmp",
        ] {
            assert!(!is_temp_name(no), "{no}");
        }
    }

    #[test]
    fn a_failed_write_says_write_and_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plain-file");
        std::fs::write(&file, b"x").unwrap();
        // A folder cannot be made under a file, whoever runs the test.
        let target = file.join("sub").join("out.json");
        let err = write_atomic(&target, b"{}").unwrap_err().to_string();
        assert!(err.starts_with("cannot write"), "{err}");
        assert!(err.contains("plain-file"), "{err}");
        write_atomic(&dir.path().join("ok.json"), b"{}").unwrap();
        assert_eq!(std::fs::read(dir.path().join("ok.json")).unwrap(), b"{}");
    }
}
