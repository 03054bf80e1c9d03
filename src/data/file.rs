//! Reading a data file into memory: the whole file, gunzipped when its name ends in `.gz`.
//! Every loader (IDX, CSV, .npy) starts here, so all of them accept compressed files and
//! report unreadable files the same way.

use std::io::Read;
use std::path::Path;

use flate2::read::MultiGzDecoder;

use crate::error::{Error, Result};

/// The bytes of `path`, decompressed when the name ends in `.gz`.
pub(crate) fn read_bytes(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).map_err(|e| Error::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    if is_gzip_name(path) {
        gunzip(&raw, &path.display().to_string())
    } else {
        Ok(raw)
    }
}

/// True when the file name ends in `.gz` (any case).
pub(crate) fn is_gzip_name(path: &Path) -> bool {
    path.extension()
        .is_some_and(|extension| extension.eq_ignore_ascii_case("gz"))
}

/// Decompresses a gzip stream (several concatenated members are allowed); `origin` names the
/// file in the error.
pub(crate) fn gunzip(compressed: &[u8], origin: &str) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    MultiGzDecoder::new(compressed)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::Data {
            origin: origin.to_string(),
            message: format!(
                "not a valid gzip file ({e}); expected gzip data since the name ends in .gz"
            ),
        })?;
    Ok(bytes)
}

/// A data error for `origin`.
pub(crate) fn data_error(origin: impl Into<String>, message: impl Into<String>) -> Error {
    Error::Data {
        origin: origin.into(),
        message: message.into(),
    }
}
