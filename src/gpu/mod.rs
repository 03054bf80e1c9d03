//! GPU runtime: context (adapter, device, features, limits, error handling), buffers and
//! a GPU timer.

mod buffer;
mod context;
mod timer;

pub use buffer::{mib, pack_bytes, BufferPool, GpuBuffer, VIEW_ALIGNMENT};
pub use context::{
    list_adapters, AdapterSummary, Backend, FeatureReport, GpuContext, GpuOptions, DEFAULT_TIMEOUT,
};
pub use timer::{time_gpu, time_gpu_median};
