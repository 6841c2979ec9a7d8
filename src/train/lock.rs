//! One training run per output folder: an exclusive lock on `train.lock` in the folder, held
//! for the whole run. The operating system releases it when the process ends, however it ends,
//! so a lock left by a killed run is never in the way. Holding it, a run also removes the
//! temporary files a killed run's atomic writes left behind.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::Path;

use crate::atomic::is_temp_name;
use crate::error::{Error, Result};

/// The lock file's name inside a run folder.
pub const LOCK_FILE: &str = "train.lock";

/// The held lock of a run folder; released when dropped.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

impl RunLock {
    /// Takes the lock of `dir` (created if missing), or fails naming the process that holds it.
    pub fn acquire(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| Error::write(dir, e))?;
        let path = dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::write(&path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let holder = std::fs::read_to_string(&path).unwrap_or_default();
                return Err(Error::config(
                    "out",
                    format!(
                        "{} is in use by another training run ({}); wait for it to end or \
                         choose another --out",
                        dir.display(),
                        holder.trim()
                    ),
                ));
            }
            Err(TryLockError::Error(e)) => return Err(Error::io(&path, e)),
        }
        file.set_len(0).map_err(|e| Error::write(&path, e))?;
        writeln!(file, "pid {}", std::process::id()).map_err(|e| Error::write(&path, e))?;
        remove_stale_temp_files(dir)?;
        Ok(RunLock { _file: file })
    }
}

/// Removes `.NAME.PID.tmp` files (left by atomic writes of a killed run) from `dir`; only
/// the holder of the folder's lock may call it.
fn remove_stale_temp_files(dir: &Path) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if is_temp_name(name) {
            let path = entry.path();
            std::fs::remove_file(&path).map_err(|e| Error::write(&path, e))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_and_a_dropped_one_is_free() {
        let dir = tempfile::tempdir().unwrap();
        let stale = dir.path().join(".checkpoint.bin.4242.tmp");
        std::fs::write(&stale, b"half").unwrap();
        let keep = dir.path().join("notes.tmp");
        std::fs::write(&keep, b"mine").unwrap();
        let lock = RunLock::acquire(dir.path()).unwrap();
        assert!(!stale.exists(), "stale temp file removed");
        assert!(keep.exists(), "other files kept");
        let err = RunLock::acquire(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("another training run")
                && err.contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        drop(lock);
        RunLock::acquire(dir.path()).unwrap();
    }
}
