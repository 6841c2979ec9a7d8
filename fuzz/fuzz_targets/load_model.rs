//! Fuzzes the exported-model loader: any bytes must give a model or an error, never a panic,
//! and never an allocation the file cannot justify.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = enas4d::format::ExportedNet::from_bytes(data);
});
