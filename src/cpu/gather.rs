//! CPU twin of shaders/gather.wgsl: a batch of rows picked by index from a data set, starting
//! at `cursor` in the epoch's index list; bytes scaled to [0, 1]. An index beyond the data set
//! gives a row of zeros, as on the GPU.

use crate::cpu::{check_lens, check_nonzero};
use crate::error::{shape_error, Result};

fn batch_indices<'a>(
    op: &'static str,
    indices: &'a [u32],
    cursor: usize,
    rows: usize,
) -> Result<&'a [u32]> {
    indices.get(cursor..cursor + rows).ok_or_else(|| {
        shape_error(
            op,
            format!(
                "rows {cursor}..{} of an index list of {}",
                cursor + rows,
                indices.len()
            ),
        )
    })
}

/// out (rows, width) = data[indices\[cursor + r\], :] / 255 for bytes (data_rows, width).
pub fn gather_u8(
    out: &mut [f32],
    data: &[u8],
    indices: &[u32],
    cursor: usize,
    width: usize,
) -> Result<()> {
    check_nonzero("gather_u8", &[("width", width), ("out", out.len())])?;
    let rows = out.len() / width;
    check_lens("gather_u8", &[("out", out.len(), rows * width)])?;
    let batch = batch_indices("gather_u8", indices, cursor, rows)?;
    let data_rows = data.len() / width;
    for (row, &index) in out.chunks_mut(width).zip(batch) {
        let index = index as usize;
        if index < data_rows {
            let bytes = &data[index * width..(index + 1) * width];
            for (value, &byte) in row.iter_mut().zip(bytes) {
                *value = f32::from(byte) / 255.0;
            }
        } else {
            row.fill(0.0);
        }
    }
    Ok(())
}

/// out (rows, width) = data[indices\[cursor + r\], :] for floats (data_rows, width).
pub fn gather_f32(
    out: &mut [f32],
    data: &[f32],
    indices: &[u32],
    cursor: usize,
    width: usize,
) -> Result<()> {
    check_nonzero("gather_f32", &[("width", width), ("out", out.len())])?;
    let rows = out.len() / width;
    check_lens("gather_f32", &[("out", out.len(), rows * width)])?;
    let batch = batch_indices("gather_f32", indices, cursor, rows)?;
    let data_rows = data.len() / width;
    for (row, &index) in out.chunks_mut(width).zip(batch) {
        let index = index as usize;
        if index < data_rows {
            row.copy_from_slice(&data[index * width..(index + 1) * width]);
        } else {
            row.fill(0.0);
        }
    }
    Ok(())
}
