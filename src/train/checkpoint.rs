//! Training checkpoints and trained supernets: one file with a JSON header, the module's
//! weights and (for checkpoints) the optimizer state, written atomically.
//!
//! Layout (version 2): `ENAS4DK2`, then three sections, each a u64 little-endian length, the
//! bytes and their CRC-32 (IEEE, u32 little-endian): the JSON [`CheckpointHeader`], the module
//! record, the optimizer record (empty for a trained net). Every checksum is verified and the
//! header's numbers bounded before anything is built from them. Version 1 files (`ENAS4DCK`,
//! the same sections without checksums) still load.

use std::path::Path;

use burn::module::Module;
use burn::optim::ModuleOptimizer;
use burn::store::ModuleRecord;
use burn::tensor::{Bytes, Device};
use serde::{Deserialize, Serialize};

use super::config::TrainConfig;
use crate::atomic::write_atomic;
use crate::error::{Error, Result};
use crate::space::Preset;
use crate::supernet::Supernet;

/// Magic of version 1 (no checksums) and of the current version.
const MAGIC_V1: &[u8; 8] = b"ENAS4DCK";
const MAGIC: &[u8; 8] = b"ENAS4DK2";
/// Version of the checkpoint layout.
pub const CHECKPOINT_VERSION: u32 = 2;
const SECTION_NAMES: [&str; 3] = ["header", "weights", "optimizer state"];

/// What a checkpoint says about itself.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointHeader {
    /// Layout version, [`CHECKPOINT_VERSION`].
    pub version: u32,
    /// The run's configuration.
    pub config: TrainConfig,
    /// The preset the weights belong to.
    pub preset: Preset,
    /// Class names of the training data.
    pub classes: Vec<String>,
    /// Optimizer steps done.
    pub step: usize,
    /// Training wall-clock seconds so far (all sessions of the run).
    pub elapsed_s: f64,
    /// Devices the run has used, in order.
    pub devices: Vec<String>,
}

/// A loaded checkpoint or trained supernet.
#[derive(Debug)]
pub struct Checkpoint {
    /// Its header.
    pub header: CheckpointHeader,
    /// The supernet, on the device it was loaded to.
    pub net: Supernet,
    /// Optimizer state bytes, when the file holds them.
    pub optimizer: Option<Bytes>,
}

fn record_err(what: &str, e: impl std::fmt::Debug) -> Error {
    Error::Checkpoint(format!("{what}: {e:?}"))
}

/// Saves `net` (and `optimizer`, for a checkpoint) to `path`.
pub fn save(
    path: &Path,
    header: &CheckpointHeader,
    net: &Supernet,
    optimizer: Option<&ModuleOptimizer>,
) -> Result<()> {
    let head = serde_json::to_vec(header).map_err(|e| Error::Checkpoint(e.to_string()))?;
    let model = net
        .clone()
        .into_record()
        .into_bytes()
        .map_err(|e| record_err("weights", e))?;
    let optim = match optimizer {
        Some(o) => o
            .into_bytes()
            .map_err(|e| record_err("optimizer", e))?
            .to_vec(),
        None => Vec::new(),
    };
    let mut out = Vec::with_capacity(8 + 36 + head.len() + model.len() + optim.len());
    out.extend_from_slice(MAGIC);
    for part in [&head[..], &model[..], &optim[..]] {
        out.extend_from_slice(&(part.len() as u64).to_le_bytes());
        out.extend_from_slice(part);
        out.extend_from_slice(&crc32fast::hash(part).to_le_bytes());
    }
    write_atomic(path, &out)
}

/// Whether `bytes` start as a safetensors file does: an 8-byte little-endian header length
/// that fits the file, then a JSON object.
fn looks_like_safetensors(bytes: &[u8]) -> bool {
    let Some((len, rest)) = bytes.split_first_chunk::<8>() else {
        return false;
    };
    let len = u64::from_le_bytes(*len);
    len >= 2 && len <= rest.len() as u64 && rest.first() == Some(&b'{')
}

/// The three sections and the layout version, checksums verified.
fn sections(bytes: &[u8]) -> Result<([&[u8]; 3], u32)> {
    let (mut rest, version) = if let Some(r) = bytes.strip_prefix(MAGIC) {
        (r, CHECKPOINT_VERSION)
    } else if let Some(r) = bytes.strip_prefix(MAGIC_V1) {
        (r, 1)
    } else {
        return Err(Error::Checkpoint(if looks_like_safetensors(bytes) {
            "this is an exported net (safetensors), not a supernet or checkpoint: classify \
             with `enas4d infer --model`, look inside with any safetensors reader"
                .into()
        } else {
            "not an enas4d checkpoint or supernet (bad magic)".into()
        }));
    };
    let checksum = if version >= 2 { 4 } else { 0 };
    let mut parts: [&[u8]; 3] = [&[]; 3];
    for (i, part) in parts.iter_mut().enumerate() {
        let name = SECTION_NAMES[i];
        let Some((len, tail)) = rest.split_first_chunk::<8>() else {
            return Err(Error::Checkpoint(format!(
                "checkpoint truncated in its {name}"
            )));
        };
        let len = u64::from_le_bytes(*len);
        if len.saturating_add(checksum as u64) > tail.len() as u64 {
            return Err(Error::Checkpoint(format!(
                "checkpoint {name} claims {len} bytes, {} left",
                tail.len()
            )));
        }
        let (p, t) = tail.split_at(len as usize);
        let (sum, t) = t.split_at(checksum);
        if let Ok(sum) = <[u8; 4]>::try_from(sum) {
            if crc32fast::hash(p) != u32::from_le_bytes(sum) {
                return Err(Error::Checkpoint(format!(
                    "checkpoint {name} is corrupt (checksum mismatch)"
                )));
            }
        }
        *part = p;
        rest = t;
    }
    if !rest.is_empty() {
        return Err(Error::Checkpoint(format!(
            "{} trailing bytes after the checkpoint",
            rest.len()
        )));
    }
    Ok((parts, version))
}

/// Checks what the header says against the layout and the configuration.
fn check_header(header: &CheckpointHeader, layout: u32) -> Result<()> {
    if header.version != layout {
        return Err(Error::Checkpoint(format!(
            "checkpoint header says version {}, its layout is version {layout} (this build \
             reads 1 and {CHECKPOINT_VERSION})",
            header.version
        )));
    }
    header.config.validate()?;
    let total = header.config.total_steps();
    if header.step > total {
        return Err(Error::Checkpoint(format!(
            "checkpoint step {} is beyond the run's {total} steps",
            header.step
        )));
    }
    if !(header.elapsed_s.is_finite() && header.elapsed_s >= 0.0) {
        return Err(Error::Checkpoint(format!(
            "checkpoint elapsed time {} s is not a finite, non-negative number",
            header.elapsed_s
        )));
    }
    Ok(())
}

/// Loads a checkpoint or trained supernet onto `device`.
pub fn load(path: &Path, device: &Device) -> Result<Checkpoint> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let ([head, model, optim], layout) = sections(&bytes)?;
    let header: CheckpointHeader = serde_json::from_slice(head)
        .map_err(|e| Error::Checkpoint(format!("checkpoint header: {e}")))?;
    check_header(&header, layout)?;
    let preset = header.preset.clone().validated()?;
    let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(model.to_vec()))
        .map_err(|e| record_err("weights", e))?;
    let net = Supernet::new(&preset, device, 0)?
        .try_load_record(record)
        .map_err(|e| record_err("weights do not fit the preset", e))?;
    let optimizer = (!optim.is_empty()).then(|| Bytes::from_bytes_vec(optim.to_vec()));
    Ok(Checkpoint {
        header,
        net,
        optimizer,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(dir: &Path) -> (std::path::PathBuf, CheckpointHeader) {
        let preset = Preset::tiny(2, 10).unwrap();
        let config = TrainConfig::schedule("quick", 2).unwrap();
        let header = CheckpointHeader {
            version: CHECKPOINT_VERSION,
            step: config.total_steps(),
            config,
            preset: preset.clone(),
            classes: (0..10).map(|i| i.to_string()).collect(),
            elapsed_s: 1.5,
            devices: vec!["cpu".into()],
        };
        let net = Supernet::new(&preset, &Device::flex(), 3).unwrap();
        let path = dir.join("net.bin");
        save(&path, &header, &net, None).unwrap();
        (path, header)
    }

    /// Section `i` of a version-2 file: (offset of its bytes, length).
    fn section(bytes: &[u8], i: usize) -> (usize, usize) {
        let mut at = 8;
        for _ in 0..i {
            let len = u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap()) as usize;
            at += 8 + len + 4;
        }
        let len = u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap()) as usize;
        (at + 8, len)
    }

    fn load_err(bytes: &[u8], dir: &Path) -> String {
        let path = dir.join("edited.bin");
        std::fs::write(&path, bytes).unwrap();
        match load(&path, &Device::flex()) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("an edited file loaded"),
        }
    }

    #[test]
    fn corrupt_sections_and_hostile_headers_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (path, header) = sample(dir.path());
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(load(&path, &Device::flex()).unwrap().header, header);
        // One flipped bit anywhere in a section.
        for (i, name) in [(0, "header"), (1, "weights")] {
            let (at, len) = section(&bytes, i);
            let mut b = bytes.clone();
            b[at + len / 2] ^= 0x10;
            let e = load_err(&b, dir.path());
            assert!(e.contains(name) && e.contains("corrupt"), "{e}");
        }
        // A header whose checksum is right but whose numbers are not.
        let rebuild = |edit: &dyn Fn(&mut serde_json::Value)| {
            let (at, len) = section(&bytes, 0);
            let mut h: serde_json::Value = serde_json::from_slice(&bytes[at..at + len]).unwrap();
            edit(&mut h);
            let h = serde_json::to_vec(&h).unwrap();
            let mut out = bytes[..8].to_vec();
            out.extend_from_slice(&(h.len() as u64).to_le_bytes());
            out.extend_from_slice(&h);
            out.extend_from_slice(&crc32fast::hash(&h).to_le_bytes());
            out.extend_from_slice(&bytes[at + len + 4..]);
            out
        };
        let e = load_err(
            &rebuild(&|h| h["step"] = 1_000_000_000_000u64.into()),
            dir.path(),
        );
        assert!(e.contains("step 1000000000000"), "{e}");
        let e = load_err(
            &rebuild(&|h| h["config"]["batch"] = 100_000_000.into()),
            dir.path(),
        );
        assert!(e.contains("batch"), "{e}");
        let e = load_err(&rebuild(&|h| h["elapsed_s"] = (-1.0).into()), dir.path());
        assert!(e.contains("elapsed"), "{e}");
        // Truncated anywhere: an error, never a panic.
        for cut in (0..bytes.len()).step_by(bytes.len() / 13 + 1) {
            load_err(&bytes[..cut], dir.path());
        }
    }

    #[test]
    fn version_1_files_still_load() {
        let dir = tempfile::tempdir().unwrap();
        let (path, mut header) = sample(dir.path());
        let bytes = std::fs::read(&path).unwrap();
        header.version = 1;
        let mut v1 = MAGIC_V1.to_vec();
        for i in 0..3 {
            let (at, len) = section(&bytes, i);
            let part = if i == 0 {
                serde_json::to_vec(&header).unwrap()
            } else {
                bytes[at..at + len].to_vec()
            };
            v1.extend_from_slice(&(part.len() as u64).to_le_bytes());
            v1.extend_from_slice(&part);
        }
        let old = dir.path().join("v1.bin");
        std::fs::write(&old, &v1).unwrap();
        assert_eq!(load(&old, &Device::flex()).unwrap().header, header);
        // A version-1 layout whose header claims version 2 is refused.
        let v1_head = serde_json::to_vec(&header).unwrap().len();
        header.version = 2;
        let h = serde_json::to_vec(&header).unwrap();
        let mut lie = MAGIC_V1.to_vec();
        lie.extend_from_slice(&(h.len() as u64).to_le_bytes());
        lie.extend_from_slice(&h);
        lie.extend_from_slice(&v1[16 + v1_head..]);
        assert!(load_err(&lie, dir.path()).contains("layout is version 1"));
    }

    /// Every supernet the repository ships loads (version 1 or 2) and passes the header checks.
    #[test]
    fn shipped_supernets_load() {
        fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
            for e in std::fs::read_dir(dir).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    walk(&p, out);
                } else if p.extension().is_some_and(|x| x == "bin") {
                    out.push(p);
                }
            }
        }
        let mut files = Vec::new();
        walk(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("models"),
            &mut files,
        );
        assert!(files.len() >= 2, "{files:?}");
        for f in files {
            if let Err(e) = load(&f, &Device::flex()) {
                panic!("{}: {e}", f.display());
            }
        }
    }
}
