//! Data sets: loaders for IDX (MNIST / Fashion-MNIST, gzipped or raw), CIFAR-10/100 binary and
//! folders of images (one folder per class), a fixed-seed validation split, and the
//! augmentation that turns images into NCHW `f32` batches at a subnet's resolution.
//!
//! Images are kept as `u8` in memory, channel-major per image (`[C, H, W]`); grey images keep
//! one channel and become 3 when batched.

mod augment;
mod cifar;
mod dataset;
mod decode;
mod folder;
mod idx;
mod source;

pub use augment::{to_batch, Augment};
pub use cifar::load_cifar;
pub use dataset::Dataset;
pub use decode::{decode_image, MAX_DECODE_BYTES, MAX_PIXELS};
pub use folder::load_folder;
pub use idx::{fashion_mnist, load_idx, FASHION_MNIST_CLASSES, FASHION_MNIST_DIR};
pub use source::DataSource;
