//! A 2-D scatter of points coloured by label as an RGB PNG: axes scaled to the data with a
//! margin, a grey frame, 3×3-pixel points in row order (later rows on top), and a legend of
//! colour swatches with each label's number drawn in a 3×5 pixel font. Ten colours
//! (Tableau 10); label l takes colour l mod 10; points without labels are near-black.
//! Written atomically.

use std::path::Path;

use crate::error::{Error, Result};
use crate::io::write_atomic;
use crate::probe::Pca;

/// The picture's width in pixels.
pub const SCATTER_WIDTH: usize = 640;
/// The picture's height in pixels.
pub const SCATTER_HEIGHT: usize = 480;
/// Pixels between the frame and the picture's edge.
const MARGIN: usize = 20;
/// Pixels on the right kept for the legend.
const LEGEND_WIDTH: usize = 70;
/// Pixels from one legend entry to the next.
const LEGEND_ROW: usize = 14;
/// The share of each axis's span left empty on either side of the data.
const PADDING: f64 = 0.05;

/// Tableau 10: blue, orange, green, red, purple, brown, pink, grey, olive, cyan.
const PALETTE: [[u8; 3]; 10] = [
    [0x1f, 0x77, 0xb4],
    [0xff, 0x7f, 0x0e],
    [0x2c, 0xa0, 0x2c],
    [0xd6, 0x27, 0x28],
    [0x94, 0x67, 0xbd],
    [0x8c, 0x56, 0x4b],
    [0xe3, 0x77, 0xc2],
    [0x7f, 0x7f, 0x7f],
    [0xbc, 0xbd, 0x22],
    [0x17, 0xbe, 0xcf],
];
const UNLABELLED: [u8; 3] = [0x20, 0x20, 0x20];
const FRAME: [u8; 3] = [0xb0, 0xb0, 0xb0];
const TEXT: [u8; 3] = [0x00, 0x00, 0x00];

/// The digits 0-9 in 3×5 pixels: five rows of three bits, the left pixel the highest bit.
const DIGITS: [[u8; 5]; 10] = [
    [0b111, 0b101, 0b101, 0b101, 0b111],
    [0b010, 0b110, 0b010, 0b010, 0b111],
    [0b111, 0b001, 0b111, 0b100, 0b111],
    [0b111, 0b001, 0b111, 0b001, 0b111],
    [0b101, 0b101, 0b111, 0b001, 0b001],
    [0b111, 0b100, 0b111, 0b001, 0b111],
    [0b111, 0b100, 0b111, 0b101, 0b111],
    [0b111, 0b001, 0b001, 0b001, 0b001],
    [0b111, 0b101, 0b111, 0b101, 0b111],
    [0b111, 0b101, 0b111, 0b001, 0b111],
];

/// The colour of points with `label` (`None`: unlabelled).
pub fn label_colour(label: Option<u8>) -> [u8; 3] {
    label.map_or(UNLABELLED, |l| PALETTE[usize::from(l) % PALETTE.len()])
}

/// An RGB picture being drawn.
struct Canvas {
    /// (SCATTER_HEIGHT, SCATTER_WIDTH, 3).
    pixels: Vec<u8>,
}

impl Canvas {
    fn new() -> Canvas {
        Canvas {
            pixels: vec![255; SCATTER_WIDTH * SCATTER_HEIGHT * 3],
        }
    }

    fn set(&mut self, x: usize, y: usize, colour: [u8; 3]) {
        if x < SCATTER_WIDTH && y < SCATTER_HEIGHT {
            let at = (y * SCATTER_WIDTH + x) * 3;
            self.pixels[at..at + 3].copy_from_slice(&colour);
        }
    }

    /// A filled rectangle with top-left corner (x, y).
    fn fill(&mut self, (x, y): (usize, usize), (width, height): (usize, usize), colour: [u8; 3]) {
        for dy in 0..height {
            for dx in 0..width {
                self.set(x + dx, y + dy, colour);
            }
        }
    }

    /// The outline of the rectangle from (left, top) to (right, bottom), inclusive.
    fn frame(&mut self, (left, top): (usize, usize), (right, bottom): (usize, usize)) {
        self.fill((left, top), (right - left + 1, 1), FRAME);
        self.fill((left, bottom), (right - left + 1, 1), FRAME);
        self.fill((left, top), (1, bottom - top + 1), FRAME);
        self.fill((right, top), (1, bottom - top + 1), FRAME);
    }

    /// `number` in the 3×5 font at `scale` pixels per font pixel, top-left at (x, y).
    fn number(&mut self, (x, y): (usize, usize), number: u8, scale: usize) {
        for (i, digit) in number.to_string().bytes().enumerate() {
            let glyph = DIGITS[usize::from(digit - b'0')];
            let left = x + i * 4 * scale;
            for (row, bits) in glyph.iter().enumerate() {
                for column in 0..3 {
                    if bits & (0b100 >> column) != 0 {
                        self.fill(
                            (left + column * scale, y + row * scale),
                            (scale, scale),
                            TEXT,
                        );
                    }
                }
            }
        }
    }

    fn png(&self) -> Result<Vec<u8>> {
        let mut bytes = Vec::new();
        let mut encoder =
            png::Encoder::new(&mut bytes, SCATTER_WIDTH as u32, SCATTER_HEIGHT as u32);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let png_error =
            |e: png::EncodingError| Error::InvalidArgument(format!("PNG encoding: {e}"));
        let mut writer = encoder.write_header().map_err(png_error)?;
        writer.write_image_data(&self.pixels).map_err(png_error)?;
        writer.finish().map_err(png_error)?;
        Ok(bytes)
    }
}

/// The PNG bytes of a scatter of `points` (rows, 2) as (x, y), coloured by `labels` (one
/// per point) when given. Errors ([`Error::InvalidArgument`]) for no points, an odd count
/// of values, a value that is not finite, or labels that are not one per point.
pub fn scatter_png(points: &[f32], labels: Option<&[u8]>) -> Result<Vec<u8>> {
    if points.is_empty() || !points.len().is_multiple_of(2) {
        return Err(Error::InvalidArgument(format!(
            "scatter: {} values are not one or more (x, y) pairs",
            points.len()
        )));
    }
    if points.iter().any(|v| !v.is_finite()) {
        return Err(Error::InvalidArgument(
            "scatter: a coordinate is NaN or infinite".to_string(),
        ));
    }
    let count = points.len() / 2;
    if let Some(labels) = labels {
        if labels.len() != count {
            return Err(Error::InvalidArgument(format!(
                "scatter: {} labels for {count} points",
                labels.len()
            )));
        }
    }
    let (left, top) = (MARGIN, MARGIN);
    let (right, bottom) = (
        SCATTER_WIDTH - LEGEND_WIDTH - MARGIN,
        SCATTER_HEIGHT - MARGIN,
    );
    let x_axis = Axis::fit(points.iter().step_by(2), left, right);
    // Screen y grows downwards: the largest value maps to the top.
    let y_axis = Axis::fit(points.iter().skip(1).step_by(2), bottom, top);
    let mut canvas = Canvas::new();
    canvas.frame((left - 1, top - 1), (right + 1, bottom + 1));
    for (i, point) in points.chunks_exact(2).enumerate() {
        let colour = label_colour(labels.map(|l| l[i]));
        let (x, y) = (x_axis.pixel(point[0]), y_axis.pixel(point[1]));
        canvas.fill((x.saturating_sub(1), y.saturating_sub(1)), (3, 3), colour);
    }
    if let Some(labels) = labels {
        draw_legend(&mut canvas, labels);
    }
    canvas.png()
}

/// A swatch and the number of each distinct label, top to bottom in increasing order, as
/// many as fit.
fn draw_legend(canvas: &mut Canvas, labels: &[u8]) {
    let mut present = [false; 256];
    labels.iter().for_each(|&l| present[usize::from(l)] = true);
    let x = SCATTER_WIDTH - LEGEND_WIDTH + 4;
    let entries = (0..=255u8).filter(|&l| present[usize::from(l)]);
    for (row, label) in entries
        .take((SCATTER_HEIGHT - 2 * MARGIN) / LEGEND_ROW)
        .enumerate()
    {
        let y = MARGIN + row * LEGEND_ROW;
        canvas.fill((x, y), (10, 10), label_colour(Some(label)));
        canvas.number((x + 16, y), label, 2);
    }
}

/// A linear map from data values to pixels: `low` value → `from` pixel, `high` → `to`.
struct Axis {
    low: f64,
    high: f64,
    from: usize,
    to: usize,
}

impl Axis {
    /// The data range of `values` widened by PADDING on each side (±1 around a single value).
    fn fit<'a>(values: impl Iterator<Item = &'a f32>, from: usize, to: usize) -> Axis {
        let (low, high) = values.fold((f64::MAX, f64::MIN), |(l, h), &v| {
            (l.min(f64::from(v)), h.max(f64::from(v)))
        });
        let pad = if high > low {
            (high - low) * PADDING
        } else {
            1.0
        };
        Axis {
            low: low - pad,
            high: high + pad,
            from,
            to,
        }
    }

    fn pixel(&self, value: f32) -> usize {
        let t = (f64::from(value) - self.low) / (self.high - self.low);
        let (from, to) = (self.from as f64, self.to as f64);
        (from + t * (to - from)).round().max(0.0) as usize
    }
}

/// Writes a scatter of `points` (rows, 2) to `path`; see [`scatter_png`].
pub fn write_scatter(path: &Path, points: &[f32], labels: Option<&[u8]>) -> Result<()> {
    write_atomic(path, &scatter_png(points, labels)?)
}

/// Writes a scatter of `codes` (rows, width) coloured by `labels` to `path`: the codes
/// themselves for a width of 2, otherwise their first two principal components (PCA fitted
/// on these codes). Errors ([`Error::InvalidArgument`]) for a width below 2, fewer than 2
/// rows when PCA is needed, and as [`scatter_png`] does.
pub fn scatter_codes(
    path: &Path,
    codes: &[f32],
    width: usize,
    labels: Option<&[u8]>,
) -> Result<()> {
    if width < 2 {
        return Err(Error::InvalidArgument(format!(
            "scatter: codes of width {width}; a 2-D scatter needs at least 2 columns"
        )));
    }
    if width == 2 {
        return write_scatter(path, codes, labels);
    }
    let points = Pca::fit(codes, width, 2)?.transform(codes)?;
    write_scatter(path, &points, labels)
}
