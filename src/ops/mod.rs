//! The kernels: each op has a spec (shapes and options, validated), a plain-Rust reference that
//! is the definition (f64 accumulation), and a GPU launcher that records the WGSL kernel from
//! `shaders/` into a command encoder.
//!
//! Layout everywhere: NCHW, `f32`, contiguous; linear layers are `[batch, features]`; a layer's
//! fused BN / bias is one `affine` tensor `[scale(C), shift(C)]` (a bias is scale 1, shift b).

pub mod conv;
pub mod dwconv;
pub mod gemm;
pub mod kernel_transform;
pub mod mbconv;
pub mod pool;
pub mod resize;
pub mod se;
pub mod softmax;

pub use crate::space::Activation;

use crate::error::{Error, Result};

/// Which planes of a `[batch, total, size]` tensor an op touches: channels
/// `offset .. offset + len` of every sample (the stage-wise runtime's slices).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Planes {
    /// Samples.
    pub batch: usize,
    /// First channel of each sample.
    pub offset: usize,
    /// Channels per sample.
    pub len: usize,
    /// Channels stored per sample (≥ offset + len).
    pub total: usize,
}

impl Planes {
    /// All `rows` planes of a tensor, as one sample.
    pub fn all(rows: usize) -> Self {
        Planes {
            batch: 1,
            offset: 0,
            len: rows,
            total: rows,
        }
    }

    /// Checks the slice and returns the planes the tensor must hold (`batch · total`).
    pub(crate) fn check(&self, op: &'static str) -> Result<usize> {
        if self.offset + self.len > self.total {
            return Err(Error::config(
                op,
                format!(
                    "channels {}..{} of {}",
                    self.offset,
                    self.offset + self.len,
                    self.total
                ),
            ));
        }
        Ok(self.batch * self.total)
    }

    /// Planes touched (`batch · len`).
    pub fn count(&self) -> usize {
        self.batch * self.len
    }
}

/// Checks that a host tensor has exactly `expected` elements.
pub(crate) fn check_len(
    op: &'static str,
    what: &'static str,
    got: usize,
    expected: usize,
) -> Result<()> {
    if got == expected {
        Ok(())
    } else {
        Err(Error::Shape {
            op,
            what,
            expected,
            got,
        })
    }
}

/// Checks that a GPU buffer can hold `expected` `f32`/`u32` elements.
pub(crate) fn check_buffer(
    op: &'static str,
    what: &'static str,
    buffer: &wgpu::Buffer,
    expected: usize,
) -> Result<()> {
    let got = (buffer.size() / 4) as usize;
    if got >= expected {
        Ok(())
    } else {
        Err(Error::Shape {
            op,
            what,
            expected,
            got,
        })
    }
}

/// Converts a size to the `u32` the shaders take, failing cleanly when it does not fit.
pub(crate) fn to_u32(field: &'static str, v: usize) -> Result<u32> {
    u32::try_from(v)
        .map_err(|_| Error::config(field, format!("{v} exceeds the kernels' 32-bit indexing")))
}

/// Per-stage activity as the shaders' bit mask (bit s set = stage s runs).
pub(crate) fn active_mask(active: &[bool]) -> u32 {
    active
        .iter()
        .enumerate()
        .filter(|(_, &a)| a)
        .fold(0, |m, (s, _)| m | (1 << s))
}

/// The layout of WGSL struct `name` in `source` as naga computes it: each member's name and
/// byte offset, and the struct's size.
#[cfg(test)]
pub(crate) fn wgsl_layout(source: &str, name: &str) -> (Vec<(String, usize)>, usize) {
    let module = naga::front::wgsl::parse_str(source)
        .unwrap_or_else(|e| panic!("WGSL does not parse: {}", e.emit_to_string(source)));
    let ty = module
        .types
        .iter()
        .map(|(_, t)| t)
        .find(|t| t.name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("no struct {name} in the WGSL"));
    match &ty.inner {
        naga::TypeInner::Struct { members, span } => (
            members
                .iter()
                .map(|m| (m.name.clone().unwrap_or_default(), m.offset as usize))
                .collect(),
            *span as usize,
        ),
        other => panic!("{name} is not a struct: {other:?}"),
    }
}

/// Asserts that a `#[repr(C)]` Rust parameter block of `size` bytes with fields `rust` (name,
/// byte offset) mirrors the WGSL struct `Params` of `source`: the same size, and every member
/// that is not padding (`pad…`) at the same byte offset under the same name, in both directions.
#[cfg(test)]
pub(crate) fn assert_mirrors_wgsl(source: &str, size: usize, rust: &[(&str, usize)]) {
    let (members, span) = wgsl_layout(source, "Params");
    assert_eq!(size, span, "Params: size");
    let real = |n: &str| !n.starts_with("pad");
    for (field, offset) in rust.iter().filter(|(n, _)| real(n)) {
        let wgsl = members.iter().find(|(n, _)| n == field);
        assert_eq!(
            wgsl.map(|w| w.1),
            Some(*offset),
            "Params.{field}: WGSL {wgsl:?}"
        );
    }
    for (member, _) in members.iter().filter(|(n, _)| real(n)) {
        assert!(
            rust.iter().any(|(n, _)| n == member),
            "Params.{member} has no Rust mirror"
        );
    }
}

/// A test module checking Rust parameter blocks against the WGSL `Params` struct of their
/// shader ([`assert_mirrors_wgsl`]): `test_name: RustType = wgsl_source, [fields…];` per block.
macro_rules! wgsl_mirror_tests {
    ($($test:ident: $ty:ty = $source:expr, [$($field:ident),* $(,)?];)+) => {
        #[cfg(test)]
        mod layout_tests {
            use super::*;

            $(
                #[test]
                fn $test() {
                    crate::ops::assert_mirrors_wgsl(
                        &$source,
                        std::mem::size_of::<$ty>(),
                        &[$((stringify!($field), std::mem::offset_of!($ty, $field))),*],
                    );
                }
            )+
        }
    };
}
pub(crate) use wgsl_mirror_tests;
