//! Pictures: grids of grayscale images (values in [0, 1]) as 8-bit PNG, written atomically.

use std::path::Path;

use crate::error::{Error, Result};
use crate::io::write_atomic;

/// Pixels between images in a grid.
const GAP: usize = 2;

/// A grid of `rows` × `columns` images, each (height, width) values in [0, 1], row-major in
/// `images` image after image; missing cells stay black. Returns the PNG bytes.
pub fn grid_png(
    images: &[f32],
    (height, width): (usize, usize),
    columns: usize,
) -> Result<Vec<u8>> {
    let size = height * width;
    if size == 0 || columns == 0 || images.is_empty() || !images.len().is_multiple_of(size) {
        return Err(Error::InvalidArgument(format!(
            "{} values are not whole {height}x{width} images",
            images.len()
        )));
    }
    let count = images.len() / size;
    let rows = count.div_ceil(columns);
    let (grid_w, grid_h) = (columns * (width + GAP) + GAP, rows * (height + GAP) + GAP);
    let mut pixels = vec![0u8; grid_w * grid_h];
    for (i, image) in images.chunks(size).enumerate() {
        let (top, left) = (
            GAP + (i / columns) * (height + GAP),
            GAP + (i % columns) * (width + GAP),
        );
        for (p, &v) in image.iter().enumerate() {
            let value = if v.is_finite() {
                (v.clamp(0.0, 1.0) * 255.0).round() as u8
            } else {
                0
            };
            pixels[(top + p / width) * grid_w + left + p % width] = value;
        }
    }
    let mut bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut bytes, grid_w as u32, grid_h as u32);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    let png_error = |e: png::EncodingError| Error::InvalidArgument(format!("PNG encoding: {e}"));
    let mut writer = encoder.write_header().map_err(png_error)?;
    writer.write_image_data(&pixels).map_err(png_error)?;
    writer.finish().map_err(png_error)?;
    Ok(bytes)
}

/// Writes a grid of images as a PNG file.
pub fn write_grid_png(
    path: &Path,
    images: &[f32],
    shape: (usize, usize),
    columns: usize,
) -> Result<()> {
    write_atomic(path, &grid_png(images, shape, columns)?)
}
