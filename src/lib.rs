//! latent: the autoencoder family trained on any GPU through wgpu, with hand-written WGSL
//! kernels, each checked against a plain-Rust CPU twin.
//!
//! - [`gpu`]: the device (adapter choice, features, limits, errors as [`Error`]), buffers.
//! - [`kernels`]: the host side of every shader in shaders/: prepare once, record per step.
//! - [`cpu`]: the CPU twins, the reference every kernel is checked against.
//! - [`data`]: data sets (MNIST IDX, the embedded UCI digits, CSV, .npy), splits, shuffling.
//! - [`graph`]: models as graphs of ops, autodiff, plans, GPU and CPU executors.
//! - [`infer`]: encode, decode and reconstruct with a trained checkpoint.
//! - [`probe`]: what codes tell about the data: kNN, linear probe, k-means, PCA baseline.
//! - [`validate`]: every kernel run on the GPU and on the CPU, compared (`latent validate`).
//! - [`bench`](mod@bench): kernel and training-step timings (`latent bench`, the criterion benches).

pub mod bench;
pub mod cpu;
pub mod data;
pub mod error;
pub mod explore;
pub mod gpu;
pub mod graph;
pub mod infer;
pub mod io;
pub mod kernels;
pub mod model;
mod parallel;
pub mod probe;
pub mod train;
pub mod validate;

pub use error::{Error, Result};
