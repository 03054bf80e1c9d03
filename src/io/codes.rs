//! Latent codes (or any rows of floats) to a file: NumPy .npy (f32, shape (rows, cols)) when
//! the path ends in .npy, else CSV with a header c0, c1, ... (or the data's column names).
//! Written atomically.

use std::path::Path;

use crate::error::{Error, Result};
use crate::io::write_atomic;

/// The bytes of a version 1.0 .npy file holding `values` as little-endian f32 (rows, cols).
pub fn npy_bytes(values: &[f32], cols: usize) -> Vec<u8> {
    let rows = values.len() / cols.max(1);
    let mut header =
        format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {cols}), }}");
    // Magic (6) + version (2) + length (2) + header, padded with spaces to a multiple of 64
    // and ended by a newline.
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat(unpadded.div_ceil(64) * 64 - unpadded));
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend((header.len() as u16).to_le_bytes());
    bytes.extend(header.as_bytes());
    bytes.extend(values.iter().flat_map(|v| v.to_le_bytes()));
    bytes
}

/// CSV text: a header c0,c1,... then one line per row.
pub fn csv_text(values: &[f32], cols: usize) -> String {
    csv_text_named(values, cols, None)
}

/// CSV text: a header of `names` (where there are `cols` of them, else c0,c1,...) then one
/// line per row.
pub fn csv_text_named(values: &[f32], cols: usize, names: Option<&[String]>) -> String {
    let header: Vec<String> = match names {
        Some(names) if names.len() == cols => names.to_vec(),
        _ => (0..cols).map(|c| format!("c{c}")).collect(),
    };
    let mut text = header.join(",") + "\n";
    for row in values.chunks(cols) {
        text.push_str(&(row.iter().map(f32::to_string).collect::<Vec<_>>().join(",") + "\n"));
    }
    text
}

/// Writes rows of `cols` values to `path` as .npy or CSV by its extension.
pub fn write_rows(path: &Path, values: &[f32], cols: usize) -> Result<()> {
    write_rows_named(path, values, cols, None)
}

/// [`write_rows`], a CSV's header naming the columns `names` where there are `cols` of them.
pub fn write_rows_named(
    path: &Path,
    values: &[f32],
    cols: usize,
    names: Option<&[String]>,
) -> Result<()> {
    if cols == 0 || !values.len().is_multiple_of(cols) {
        return Err(Error::InvalidArgument(format!(
            "{} values are not rows of {cols}",
            values.len()
        )));
    }
    if path.extension().is_some_and(|e| e == "npy") {
        write_atomic(path, &npy_bytes(values, cols))
    } else {
        write_atomic(path, csv_text_named(values, cols, names).as_bytes())
    }
}
