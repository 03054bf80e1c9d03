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

    /// Host memory for `what` could not be allocated (a model or batch too large for this
    /// machine).
    #[error("{what}: could not allocate {bytes} bytes of host memory")]
    HostMemory { what: String, bytes: u128 },
}

/// Result with latent's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// `len` copies of `value`, or an error naming `what` when the host cannot hold them (an
/// allocation failure would otherwise abort the process).
pub fn host_vec<T: Clone>(value: T, len: usize, what: &str) -> Result<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(len).map_err(|_| Error::HostMemory {
        what: what.into(),
        bytes: len as u128 * std::mem::size_of::<T>() as u128,
    })?;
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
