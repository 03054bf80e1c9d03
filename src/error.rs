//! The one error type of the library. Every failure a user can cause (bad shapes, sizes
//! beyond the adapter's limits) and every failure of the GPU (validation errors, device loss,
//! timeouts) comes back as an `Error`; the library does not panic on user input.

use std::time::Duration;

/// Errors returned by latent.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No GPU adapter matched the requested backend.
    #[error("no GPU adapter found for backend {backend}. {hint}")]
    NoAdapter { backend: String, hint: String },

    /// `--adapter` named an adapter that does not exist.
    #[error("no adapter matches {wanted:?}; available: {available}")]
    AdapterNotFound { wanted: String, available: String },

    /// The adapter refused to create a device.
    #[error("could not create a device on {adapter}: {message}")]
    RequestDevice { adapter: String, message: String },

    /// A wgpu validation or out-of-memory error, caught by an error scope or the
    /// uncaptured-error handler.
    #[error("GPU error in {op}: {message}")]
    Gpu { op: String, message: String },

    /// The device was lost (driver reset, GPU removed, device destroyed).
    #[error("GPU device lost: {0}")]
    DeviceLost(String),

    /// GPU work did not finish in time.
    #[error("GPU work for {what} did not finish within {timeout:?}")]
    Timeout { what: String, timeout: Duration },

    /// Arguments whose shapes do not fit the op.
    #[error("{op}: {message}")]
    Shape { op: &'static str, message: String },

    /// A buffer larger than the adapter allows.
    #[error("{what}: {bytes} bytes exceed the adapter's limit of {limit} bytes ({limit_name})")]
    TooLarge {
        what: String,
        bytes: u64,
        limit: u64,
        limit_name: &'static str,
    },

    /// Bad input data: `origin` names the file (and the line or record) at fault, `message`
    /// what was found and what was expected.
    #[error("{origin}: {message}")]
    Data { origin: String, message: String },

    /// A file could not be read or written.
    #[error("{path}: {message}")]
    Io { path: String, message: String },

    /// Training diverged: the loss stopped being finite.
    #[error("{0}")]
    Diverged(String),

    /// A bad argument that is not a shape (a backend name, a tolerance, ...).
    #[error("{0}")]
    InvalidArgument(String),

    /// Host memory for `what` could not be allocated (a model, batch or output too large for
    /// this machine), or it is more than the memory the host has available now.
    #[error("{what}: {bytes} bytes of host memory{}", available.map_or(" could not be allocated".to_string(), |a| format!(" needed, {a} available")))]
    HostMemory {
        what: String,
        bytes: u128,
        available: Option<u64>,
    },
}

/// Result with latent's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// Allocations of at least this many bytes are first compared with the host's available
/// memory ([`check_host_memory`]).
const LARGE_HOST_BYTES: u128 = 256 << 20;

/// Bytes of host memory available now where the host says (Linux: MemAvailable in
/// /proc/meminfo, which counts reclaimable caches), else None.
pub fn host_memory_available() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// An error naming `what` when `bytes` (of a large allocation, 256 MiB or more) exceed the
/// host's available memory: a request that would end in the out-of-memory killer fails
/// before any work instead. Smaller sizes, and hosts that do not say, pass.
pub fn check_host_memory(bytes: u128, what: &str) -> Result<()> {
    if bytes < LARGE_HOST_BYTES {
        return Ok(());
    }
    match host_memory_available() {
        Some(available) if bytes > u128::from(available) => Err(Error::HostMemory {
            what: what.into(),
            bytes,
            available: Some(available),
        }),
        _ => Ok(()),
    }
}

/// An empty vector with room for `len` values, or an error naming `what` when the host
/// cannot hold them ([`check_host_memory`], then the allocator: a failed allocation would
/// otherwise abort the process).
pub fn host_capacity<T>(len: usize, what: &str) -> Result<Vec<T>> {
    let bytes = len as u128 * std::mem::size_of::<T>() as u128;
    check_host_memory(bytes, what)?;
    let mut v = Vec::new();
    v.try_reserve_exact(len).map_err(|_| Error::HostMemory {
        what: what.into(),
        bytes,
        available: None,
    })?;
    Ok(v)
}

/// `len` copies of `value`, or an error naming `what` when the host cannot hold them
/// ([`host_capacity`]).
pub fn host_vec<T: Clone>(value: T, len: usize, what: &str) -> Result<Vec<T>> {
    let mut v = host_capacity(len, what)?;
    v.resize(len, value);
    Ok(v)
}

/// Shorthand for a shape error naming the op.
pub(crate) fn shape_error(op: &'static str, message: impl Into<String>) -> Error {
    Error::Shape {
        op,
        message: message.into(),
    }
}
