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
    prefetch_rows(data, batch, width);
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

/// Asks for every cache line of the batch's rows before any is read. The rows lie at
/// random places in a data set larger than the caches: read one after another, each line
/// waited on main memory in turn (150 µs for an MNIST batch of 128 rows); asked for at once,
/// the misses overlap.
fn prefetch_rows<T>(data: &[T], batch: &[u32], width: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        const LINE: usize = 64;
        let row_bytes = width * std::mem::size_of::<T>();
        for &index in batch {
            let Some(row) = data.get(index as usize * width..(index as usize + 1) * width) else {
                continue;
            };
            let start = row.as_ptr().cast::<i8>();
            for offset in (0..row_bytes).step_by(LINE) {
                // SAFETY: offset < row_bytes, so the address lies inside `row`; a prefetch
                // reads nothing into the program either way.
                unsafe { _mm_prefetch::<_MM_HINT_T0>(start.add(offset)) };
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (data, batch, width);
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
    prefetch_rows(data, batch, width);
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
