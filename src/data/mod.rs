//! Data sets: samples as rows of pixels (or features) in [0, 1], with optional labels.
//!
//! - [`idx`]: MNIST in its IDX files, raw or gzipped.
//! - [`digits`]: the UCI handwritten digits (8×8), embedded in the library.
//! - [`csv`]: comma-separated values with an optional header and label column.
//! - [`npy`]: NumPy .npy arrays of shape (rows, features) or (rows, height, width).
//! - [`split`]: subsets, train/test splits and the shuffled order of each epoch.
//!
//! Every loader returns [`Error::Data`] naming the file (and line or record) for bad input
//! and [`Error::Io`] for a file that cannot be read; none panics on a bad file.

pub mod csv;
pub mod digits;
mod file;
pub mod idx;
pub mod npy;
mod scaling;
pub mod split;

pub use csv::{load_csv, load_csv_labels, load_csv_raw, load_csv_scaled, CsvOptions};
pub use digits::{load_digits, DIGITS_ATTRIBUTION};
pub use idx::{load_mnist, mnist_dir};
pub use npy::{load_npy, load_npy_labels, load_npy_raw, load_npy_scaled};
pub use scaling::Scaling;
pub use split::epoch_order;

use crate::error::{Error, Result};

/// Rows of numbers as they are, unscaled (latent codes, say), from a .npy file or else CSV:
/// (values row-major, width).
pub fn load_raw_rows(path: &std::path::Path) -> Result<(Vec<f32>, usize)> {
    if path.extension().is_some_and(|e| e == "npy") {
        load_npy_raw(path)
    } else {
        load_csv_raw(path)
    }
}

/// Labels from a file of their own, one a row: .npy of shape (rows,) or (rows, 1), else a
/// one-column CSV; each an integer in 0..=255.
pub fn load_labels(path: &std::path::Path) -> Result<Vec<u8>> {
    if path.extension().is_some_and(|e| e == "npy") {
        load_npy_labels(path)
    } else {
        load_csv_labels(path)
    }
}

/// `value` as a label: an integer in 0..=255, else None.
pub(crate) fn label_value(value: f64) -> Option<u8> {
    (value.fract() == 0.0 && (0.0..=255.0).contains(&value)).then_some(value as u8)
}

/// The values of a data set, row-major (rows, width).
#[derive(Clone, Debug, PartialEq)]
pub enum Pixels {
    /// Bytes, read as byte / 255 (the GPU gather kernel divides by 255).
    U8(Vec<u8>),
    /// Values already in [0, 1].
    F32(Vec<f32>),
}

impl Pixels {
    /// The number of values (rows × width).
    pub fn len(&self) -> usize {
        match self {
            Pixels::U8(bytes) => bytes.len(),
            Pixels::F32(values) => values.len(),
        }
    }

    /// True when there are no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The value at flat index `index`, in [0, 1].
    fn get(&self, index: usize) -> Option<f32> {
        match self {
            Pixels::U8(bytes) => bytes.get(index).map(|&byte| byte_value(byte)),
            Pixels::F32(values) => values.get(index).copied(),
        }
    }
}

/// A byte as a value in [0, 1], computed exactly as the gather kernels compute it.
pub(crate) fn byte_value(byte: u8) -> f32 {
    f32::from(byte) / 255.0
}

/// A set of samples: row `r` holds the `width` features of sample `r`.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    /// A short name for messages and run records ("mnist-train", "digits", a file name).
    pub name: String,
    /// The number of samples.
    pub rows: usize,
    /// Features per sample.
    pub width: usize,
    /// The values, row-major (rows, width).
    pub pixels: Pixels,
    /// One label per row, when the source has them.
    pub labels: Option<Vec<u8>>,
    /// (height, width) when the samples are images, e.g. (28, 28) or (8, 8).
    pub image_shape: Option<(usize, usize)>,
    /// How the source's raw values were mapped to [0, 1].
    pub scaling: Scaling,
    /// The features' names, from a CSV file's header (its label column left out).
    pub columns: Option<Vec<String>>,
}

impl Dataset {
    /// A data set of `pixels.len() / width` rows. Errors ([`Error::Data`] naming `name`) when
    /// the width is 0, the values do not fill whole rows, there are no rows or more than
    /// u32::MAX (the GPU indexes rows with u32), the labels are not one per row, the image
    /// shape does not hold `width` pixels or a min-max scaling does not have `width` columns.
    pub fn new(
        name: impl Into<String>,
        width: usize,
        pixels: Pixels,
        labels: Option<Vec<u8>>,
        image_shape: Option<(usize, usize)>,
        scaling: Scaling,
    ) -> Result<Dataset> {
        let name = name.into();
        let rows = check_rows(&name, width, pixels.len())?;
        if let Some(labels) = &labels {
            if labels.len() != rows {
                return Err(file::data_error(
                    &name,
                    format!("{} labels for {rows} rows", labels.len()),
                ));
            }
        }
        if let Some((height, image_width)) = image_shape {
            if height.checked_mul(image_width) != Some(width) {
                return Err(file::data_error(
                    &name,
                    format!("image shape {height}×{image_width} for rows of {width} values"),
                ));
            }
        }
        if let Scaling::MinMax { min, max } = &scaling {
            if min.len() != width || max.len() != width {
                return Err(file::data_error(
                    &name,
                    format!(
                        "min-max scaling of {} columns for rows of {width} values",
                        min.len()
                    ),
                ));
            }
        }
        Ok(Dataset {
            name,
            rows,
            width,
            pixels,
            labels,
            image_shape,
            scaling,
            columns: None,
        })
    }

    /// This data set with `labels` (from `origin`, a file of their own), one a row; an error
    /// naming both when the counts differ or the set has labels already.
    pub fn with_labels(self, labels: Vec<u8>, origin: &str) -> Result<Dataset> {
        if self.labels.is_some() {
            return Err(file::data_error(
                origin,
                format!("{} has labels of its own (a label column)", self.name),
            ));
        }
        if labels.len() != self.rows {
            return Err(file::data_error(
                origin,
                format!(
                    "{} labels for the {} rows of {}",
                    labels.len(),
                    self.rows,
                    self.name
                ),
            ));
        }
        Ok(Dataset {
            labels: Some(labels),
            ..self
        })
    }

    /// The value at (`row`, `col`), in [0, 1].
    ///
    /// # Panics
    /// When `row >= self.rows` or `col >= self.width` (as slice indexing does), or when the
    /// public fields were changed so that `pixels` holds fewer than rows × width values.
    pub fn value(&self, row: usize, col: usize) -> f32 {
        assert!(
            row < self.rows && col < self.width,
            "({row}, {col}) is outside the {}×{} data set {}",
            self.rows,
            self.width,
            self.name
        );
        self.pixels.get(row * self.width + col).unwrap_or_else(|| {
            panic!(
                "data set {} holds fewer values than rows × width",
                self.name
            )
        })
    }

    /// Row `row` as values in [0, 1].
    ///
    /// # Panics
    /// When `row >= self.rows` (as slice indexing does).
    pub fn row_f32(&self, row: usize) -> Vec<f32> {
        (0..self.width).map(|col| self.value(row, col)).collect()
    }

    /// Every row as values in [0, 1], row-major (rows, width).
    pub fn to_f32(&self) -> Vec<f32> {
        match &self.pixels {
            Pixels::U8(bytes) => bytes.iter().map(|&byte| byte_value(byte)).collect(),
            Pixels::F32(values) => values.clone(),
        }
    }

    /// Checks a batch size against the data set: errors ([`Error::InvalidArgument`]) for 0 or
    /// more than the number of rows.
    pub fn check_batch(&self, batch: usize) -> Result<()> {
        if batch == 0 || batch > self.rows {
            return Err(Error::InvalidArgument(format!(
                "batch size {batch} for data set {} of {} rows: it must be between 1 and {}",
                self.name, self.rows, self.rows
            )));
        }
        Ok(())
    }
}

/// The row count of `values` values of `width`, checked: whole rows, at least one, at most
/// u32::MAX.
fn check_rows(name: &str, width: usize, values: usize) -> Result<usize> {
    if width == 0 {
        return Err(file::data_error(name, "rows of 0 values"));
    }
    if !values.is_multiple_of(width) {
        return Err(file::data_error(
            name,
            format!("{values} values do not fill whole rows of {width}"),
        ));
    }
    let rows = values / width;
    if rows == 0 {
        return Err(file::data_error(name, "no rows"));
    }
    if u32::try_from(rows).is_err() {
        return Err(file::data_error(
            name,
            format!("{rows} rows; at most {} are supported", u32::MAX),
        ));
    }
    Ok(rows)
}
