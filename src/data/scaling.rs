//! How raw user values (CSV cells, .npy elements) were mapped to [0, 1], and the rule that
//! picks the mapping: values already in [0, 1] stay; integers in 0..=255 are bytes, divided
//! by 255; anything else is scaled per column from its minimum to its maximum. The mapping is
//! kept with the data set so that new data can be mapped the same way later.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// How raw values were mapped to [0, 1]. A run records its data's (config.json), and new
/// rows given to its model later are mapped the same way.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Scaling {
    /// The values were already in [0, 1].
    None,
    /// Every value was divided by this number (255 for bytes, 16 for the UCI digits).
    Divide(f32),
    /// Column `c` was mapped from `[min[c], max[c]]` to [0, 1]; a constant column maps to 0.
    MinMax { min: Vec<f32>, max: Vec<f32> },
}

impl Scaling {
    /// An error unless rows of `width` values can be mapped: a [`Scaling::MinMax`] maps the
    /// columns it was fitted on.
    pub fn check_width(&self, width: usize) -> Result<()> {
        match self {
            Scaling::MinMax { min, max } if width != min.len() || width != max.len() => {
                Err(Error::InvalidArgument(format!(
                    "rows of {width} values for a min-max scaling fitted on {} columns",
                    min.len()
                )))
            }
            _ => Ok(()),
        }
    }

    /// Maps one raw row to [0, 1] the way the data set was mapped. Results are clamped to
    /// [0, 1], so values outside the range seen when the mapping was chosen stay valid pixel
    /// values. Errors for a non-finite value, or for a row whose length differs from the
    /// columns a [`Scaling::MinMax`] was fitted on.
    pub fn apply(&self, raw_row: &[f64]) -> Result<Vec<f32>> {
        self.check_width(raw_row.len())?;
        if let Some(column) = raw_row.iter().position(|value| !value.is_finite()) {
            return Err(Error::InvalidArgument(format!(
                "value {} in column {} is not a finite number",
                raw_row.get(column).copied().unwrap_or(f64::NAN),
                column + 1
            )));
        }
        match self {
            Scaling::None => Ok(raw_row.iter().map(|&value| unit(value as f32)).collect()),
            Scaling::Divide(divisor) => Ok(raw_row
                .iter()
                .map(|&value| unit(value as f32 / divisor))
                .collect()),
            Scaling::MinMax { min, max } => min_max(raw_row, min, max),
        }
    }

    /// Maps rows of values in [0, 1] (the model's) back to the data's own units, in place:
    /// the inverse of [`Scaling::apply`] within the range it saw. Errors where a
    /// [`Scaling::MinMax`] was fitted on another number of columns.
    pub fn invert(&self, rows: &mut [f32], width: usize) -> Result<()> {
        self.check_width(width)?;
        match self {
            Scaling::None => {}
            Scaling::Divide(divisor) => rows.iter_mut().for_each(|v| *v *= divisor),
            Scaling::MinMax { min, max } => {
                for row in rows.chunks_mut(width) {
                    for ((v, &low), &high) in row.iter_mut().zip(min).zip(max) {
                        *v = (f64::from(low) + f64::from(*v) * (f64::from(high) - f64::from(low)))
                            as f32;
                    }
                }
            }
        }
        Ok(())
    }
}

/// The mapping for rows given to a model whose data was mapped by `run`, when the rows' own
/// rule picks `own`: the run's, so that the same raw row maps the same way in any file,
/// except that rows already in [0, 1] stay as they are where the run's data was divided
/// (bytes, the digits' 0..16): images saved as floats in [0, 1] are not divided again.
/// Errors where a [`Scaling::MinMax`] was fitted on another number of columns.
pub(crate) fn scaling_for_new_rows(
    run: &Scaling,
    own: Scaling,
    width: usize,
    origin: &str,
) -> Result<Scaling> {
    run.check_width(width)
        .map_err(|e| super::file::data_error(origin, format!("{e} (the run's data)")))?;
    Ok(match (run, own) {
        (Scaling::Divide(_), Scaling::None) => Scaling::None,
        _ => run.clone(),
    })
}

/// (value - min) / (max - min) per column, in f64; a constant column gives 0.
fn min_max(raw_row: &[f64], min: &[f32], max: &[f32]) -> Result<Vec<f32>> {
    let scaled = raw_row
        .iter()
        .zip(min.iter().zip(max))
        .map(|(&value, (&low, &high))| {
            let range = f64::from(high) - f64::from(low);
            if range > 0.0 {
                unit(((value - f64::from(low)) / range) as f32)
            } else {
                0.0
            }
        })
        .collect();
    Ok(scaled)
}

/// True when `value` is finite and within the range of f32, so that it can be stored as a
/// min-max bound. The loaders refuse other values.
pub(crate) fn fits_f32(value: f64) -> bool {
    value.is_finite() && value.abs() <= f64::from(f32::MAX)
}

/// Clamps to [0, 1].
fn unit(value: f32) -> f32 {
    value.clamp(0.0, 1.0)
}

/// Watches every raw value of a data set, row by row, and then picks its [`Scaling`].
pub(crate) struct ScalingChooser {
    all_unit: bool,
    all_bytes: bool,
    min: Vec<f64>,
    max: Vec<f64>,
}

impl ScalingChooser {
    /// A chooser for rows of `width` finite values.
    pub(crate) fn new(width: usize) -> Self {
        ScalingChooser {
            all_unit: true,
            all_bytes: true,
            min: vec![f64::INFINITY; width],
            max: vec![f64::NEG_INFINITY; width],
        }
    }

    /// Records one row (the caller has checked that its values are finite and that it has
    /// `width` of them).
    pub(crate) fn push_row(&mut self, row: &[f64]) {
        for ((&value, low), high) in row.iter().zip(&mut self.min).zip(&mut self.max) {
            self.all_unit &= (0.0..=1.0).contains(&value);
            self.all_bytes &= (0.0..=255.0).contains(&value) && value.fract() == 0.0;
            *low = low.min(value);
            *high = high.max(value);
        }
    }

    /// The scaling for the rows seen: none if all are in [0, 1], divide by 255 if all are
    /// integers in 0..=255, else per-column min-max.
    pub(crate) fn choose(&self) -> Scaling {
        if self.all_unit {
            Scaling::None
        } else if self.all_bytes {
            Scaling::Divide(255.0)
        } else {
            Scaling::MinMax {
                min: self.min.iter().map(|&value| value as f32).collect(),
                max: self.max.iter().map(|&value| value as f32).collect(),
            }
        }
    }
}
