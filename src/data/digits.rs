//! The UCI handwritten digits, embedded in the library: 1,797 images of 8×8 pixels, each an
//! integer 0..=16 (the count of inked pixels in a 4×4 block of a 32×32 bitmap), with labels
//! 0-9. Stored in data/digits.csv.gz as 64 pixels then the label per line, and read with
//! the CSV code. A data set that needs no download, for tests and quick runs.

use super::csv::{parse_csv, CsvOptions};
use super::file::{data_error, gunzip};
use super::{Dataset, Pixels, Scaling};
use crate::error::Result;

/// Where the embedded digits come from, and their licence.
pub const DIGITS_ATTRIBUTION: &str = "UCI Machine Learning Repository, \"Optical Recognition of Handwritten Digits\", E. Alpaydin and C. Kaynak, 1998 (https://archive.ics.uci.edu/dataset/80/optical+recognition+of+handwritten+digits), licensed under CC BY 4.0";

const DIGITS_GZ: &[u8] = include_bytes!("../../data/digits.csv.gz");
const ORIGIN: &str = "embedded digits.csv.gz";
const SIDE: usize = 8;
const WIDTH: usize = SIDE * SIDE;
const LARGEST_PIXEL: f64 = 16.0;

/// The embedded UCI digits as a data set named "digits": 1,797 rows of 64 pixels divided by
/// 16, labels 0-9, image shape (8, 8).
pub fn load_digits() -> Result<Dataset> {
    let text = gunzip(DIGITS_GZ, ORIGIN)?;
    let options = CsvOptions {
        label_column: Some(WIDTH),
    };
    let table = parse_csv(&text, ORIGIN, &options)?;
    if table.width != WIDTH {
        return Err(data_error(
            ORIGIN,
            format!("rows of {} pixels, expected {WIDTH}", table.width),
        ));
    }
    let scaling = Scaling::Divide(LARGEST_PIXEL as f32);
    let mut pixels = Vec::with_capacity(table.values.len());
    for (row, values) in table.values.chunks_exact(WIDTH).enumerate() {
        check_pixels(values, row)?;
        pixels.extend(scaling.apply(values)?);
    }
    Dataset::new(
        "digits",
        WIDTH,
        Pixels::F32(pixels),
        table.labels,
        Some((SIDE, SIDE)),
        scaling,
    )
}

/// Every pixel an integer in 0..=16; `row` counts from 0.
fn check_pixels(values: &[f64], row: usize) -> Result<()> {
    match values
        .iter()
        .position(|&value| !(0.0..=LARGEST_PIXEL).contains(&value) || value.fract() != 0.0)
    {
        None => Ok(()),
        Some(column) => Err(data_error(
            format!("{ORIGIN} line {}", row + 1),
            format!(
                "column {} holds {}; expected an integer in 0..=16",
                column + 1,
                values.get(column).copied().unwrap_or(f64::NAN)
            ),
        )),
    }
}
