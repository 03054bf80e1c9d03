//! The loss curve as a PNG: train (grey) and test (black) loss per epoch on a shared
//! vertical scale from the lowest to the highest value, one tick per epoch along the bottom.
//! No text: the numbers are in loss.csv beside it.

use std::path::Path;

use crate::error::{Error, Result};
use crate::io::write_atomic;

const WIDTH: usize = 480;
const HEIGHT: usize = 270;
const MARGIN: usize = 20;

struct Canvas {
    pixels: Vec<u8>,
}

impl Canvas {
    fn set(&mut self, x: i64, y: i64, value: u8) {
        if (0..WIDTH as i64).contains(&x) && (0..HEIGHT as i64).contains(&y) {
            self.pixels[y as usize * WIDTH + x as usize] = value;
        }
    }

    /// A 2-pixel-wide line from (x0, y0) to (x1, y1).
    fn line(&mut self, (x0, y0): (f64, f64), (x1, y1): (f64, f64), value: u8) {
        let steps = ((x1 - x0).abs().max((y1 - y0).abs()).ceil() as usize).max(1);
        for i in 0..=steps {
            let t = i as f64 / steps as f64;
            let (x, y) = (
                (x0 + t * (x1 - x0)).round() as i64,
                (y0 + t * (y1 - y0)).round() as i64,
            );
            for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                self.set(x + dx, y + dy, value);
            }
        }
    }
}

/// The PNG bytes of the loss curves; `test` may be empty.
pub fn loss_plot_png(train: &[f64], test: &[f64]) -> Result<Vec<u8>> {
    let finite: Vec<f64> = train
        .iter()
        .chain(test)
        .copied()
        .filter(|v| v.is_finite())
        .collect();
    if train.is_empty() || finite.is_empty() {
        return Err(Error::InvalidArgument("no finite losses to plot".into()));
    }
    let (low, high) = finite
        .iter()
        .fold((f64::MAX, f64::MIN), |(l, h), &v| (l.min(v), h.max(v)));
    let span = if high > low { high - low } else { 1.0 };
    let epochs = train.len().max(test.len());
    let x_of = |i: usize| {
        MARGIN as f64
            + (WIDTH - 2 * MARGIN) as f64
                * if epochs > 1 {
                    i as f64 / (epochs - 1) as f64
                } else {
                    0.5
                }
    };
    let y_of = |v: f64| MARGIN as f64 + (HEIGHT - 2 * MARGIN) as f64 * (1.0 - (v - low) / span);
    let mut canvas = Canvas {
        pixels: vec![255; WIDTH * HEIGHT],
    };
    let (left, bottom, right) = (
        MARGIN as f64 - 6.0,
        (HEIGHT - MARGIN) as f64 + 6.0,
        (WIDTH - MARGIN) as f64,
    );
    canvas.line((left, MARGIN as f64), (left, bottom), 0);
    canvas.line((left, bottom), (right, bottom), 0);
    for i in 0..epochs {
        canvas.line((x_of(i), bottom), (x_of(i), bottom + 4.0), 0);
    }
    for (series, shade) in [(train, 160u8), (test, 0u8)] {
        let points: Vec<(f64, f64)> = series
            .iter()
            .enumerate()
            .filter(|(_, v)| v.is_finite())
            .map(|(i, &v)| (x_of(i), y_of(v)))
            .collect();
        for pair in points.windows(2) {
            canvas.line(pair[0], pair[1], shade);
        }
        for &(x, y) in &points {
            canvas.line((x - 2.0, y), (x + 2.0, y), shade);
        }
    }
    let mut bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut bytes, WIDTH as u32, HEIGHT as u32);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    let png_error = |e: png::EncodingError| Error::InvalidArgument(format!("PNG encoding: {e}"));
    let mut writer = encoder.write_header().map_err(png_error)?;
    writer.write_image_data(&canvas.pixels).map_err(png_error)?;
    writer.finish().map_err(png_error)?;
    Ok(bytes)
}

/// Writes the loss curves to `path`.
pub fn write_loss_plot(path: &Path, train: &[f64], test: &[f64]) -> Result<()> {
    write_atomic(path, &loss_plot_png(train, test)?)
}
