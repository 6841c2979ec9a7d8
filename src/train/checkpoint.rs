//! Training checkpoints and trained supernets: one file with a JSON header, the module's
//! weights and (for checkpoints) the optimizer state, written atomically.
//!
//! Layout: `ENAS4DCK`, then three length-prefixed (u64 little-endian) sections: the JSON
//! [`CheckpointHeader`], the module record, the optimizer record (empty for a trained net).

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

const MAGIC: &[u8; 8] = b"ENAS4DCK";
/// Version of the checkpoint layout.
pub const CHECKPOINT_VERSION: u32 = 1;

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
    Error::Format(format!("{what}: {e:?}"))
}

/// Saves `net` (and `optimizer`, for a checkpoint) to `path`.
pub fn save(
    path: &Path,
    header: &CheckpointHeader,
    net: &Supernet,
    optimizer: Option<&ModuleOptimizer>,
) -> Result<()> {
    let head = serde_json::to_vec(header).map_err(|e| Error::Format(e.to_string()))?;
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
    let mut out = Vec::with_capacity(8 + 24 + head.len() + model.len() + optim.len());
    out.extend_from_slice(MAGIC);
    for part in [&head[..], &model[..], &optim[..]] {
        out.extend_from_slice(&(part.len() as u64).to_le_bytes());
        out.extend_from_slice(part);
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

fn sections(bytes: &[u8]) -> Result<[&[u8]; 3]> {
    let rest = bytes.strip_prefix(MAGIC).ok_or_else(|| {
        Error::Format(if looks_like_safetensors(bytes) {
            "this is an exported net (safetensors), not a supernet or checkpoint: classify \
             with `enas4d infer --model`, look inside with any safetensors reader"
                .into()
        } else {
            "not an enas4d checkpoint or supernet (bad magic)".into()
        })
    })?;
    let mut rest = rest;
    let mut parts: [&[u8]; 3] = [&[]; 3];
    for (i, part) in parts.iter_mut().enumerate() {
        if rest.len() < 8 {
            return Err(Error::Format(format!(
                "checkpoint truncated in section {i}"
            )));
        }
        let (len, tail) = rest.split_at(8);
        let len = u64::from_le_bytes(len.try_into().expect("8 bytes"));
        if len > tail.len() as u64 {
            return Err(Error::Format(format!(
                "checkpoint section {i} claims {len} bytes, {} left",
                tail.len()
            )));
        }
        let (p, t) = tail.split_at(len as usize);
        *part = p;
        rest = t;
    }
    if !rest.is_empty() {
        return Err(Error::Format(format!(
            "{} trailing bytes after the checkpoint",
            rest.len()
        )));
    }
    Ok(parts)
}

/// Loads a checkpoint or trained supernet onto `device`.
pub fn load(path: &Path, device: &Device) -> Result<Checkpoint> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let [head, model, optim] = sections(&bytes)?;
    let header: CheckpointHeader = serde_json::from_slice(head)
        .map_err(|e| Error::Format(format!("checkpoint header: {e}")))?;
    if header.version != CHECKPOINT_VERSION {
        return Err(Error::Format(format!(
            "checkpoint version {} (this build reads {CHECKPOINT_VERSION})",
            header.version
        )));
    }
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
