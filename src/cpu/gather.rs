//! CPU twin of shaders/gather.wgsl: a batch of rows picked by index from a data set, bytes
//! scaled to [0, 1]. An index beyond the data set gives a row of zeros, as on the GPU.

use crate::cpu::{check_lens, check_nonzero};
use crate::error::Result;

/// out (rows, width) = data[indices[r], :] / 255 for a data set of bytes (data_rows, width).
pub fn gather_u8(out: &mut [f32], data: &[u8], indices: &[u32], width: usize) -> Result<()> {
    check_nonzero("gather_u8", &[("width", width), ("rows", indices.len())])?;
    check_lens("gather_u8", &[("out", out.len(), indices.len() * width)])?;
    let data_rows = data.len() / width;
    for (row, &index) in out.chunks_mut(width).zip(indices) {
        let index = index as usize;
        for (c, value) in row.iter_mut().enumerate() {
            *value = if index < data_rows {
                f32::from(data[index * width + c]) / 255.0
            } else {
                0.0
            };
        }
    }
    Ok(())
}

/// out (rows, width) = data[indices[r], :] for a data set of floats (data_rows, width).
pub fn gather_f32(out: &mut [f32], data: &[f32], indices: &[u32], width: usize) -> Result<()> {
    check_nonzero("gather_f32", &[("width", width), ("rows", indices.len())])?;
    check_lens("gather_f32", &[("out", out.len(), indices.len() * width)])?;
    let data_rows = data.len() / width;
    for (row, &index) in out.chunks_mut(width).zip(indices) {
        let index = index as usize;
        if index < data_rows {
            row.copy_from_slice(&data[index * width..(index + 1) * width]);
        } else {
            row.fill(0.0);
        }
    }
    Ok(())
}
