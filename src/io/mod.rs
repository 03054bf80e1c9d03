//! Files latent writes and reads, each written atomically: checkpoints (safetensors + JSON),
//! the loss log (CSV), codes (.npy / CSV), pictures (image grids, the loss curve, scatters).

pub mod checkpoint;
pub mod codes;
pub mod image;
pub mod loss_log;
pub mod plot;
pub mod scatter;

use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};

/// Writes `bytes` to `path` atomically: a temporary file in the same directory, synced,
/// then renamed over `path`, so a crash leaves either the old file or the new one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let io_error = |e: std::io::Error| Error::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    let file_name = path.file_name().ok_or_else(|| Error::Io {
        path: path.display().to_string(),
        message: "not a file path".into(),
    })?;
    let temporary = path.with_file_name(format!(".{}.tmp", file_name.to_string_lossy()));
    let mut file = std::fs::File::create(&temporary).map_err(io_error)?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(io_error)?;
    drop(file);
    std::fs::rename(&temporary, path).map_err(io_error)
}
