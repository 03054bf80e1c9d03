//! Picking rows: subsets, a shuffled train/test split, and the order in which an epoch
//! visits the training rows. Everything is deterministic in its seed.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use super::{Dataset, Pixels};
use crate::error::{Error, Result};

impl Dataset {
    /// The rows `indices`, in that order (repeats allowed), with their labels; name, image
    /// shape, scaling and column names are kept. An empty `indices` gives a data set of 0 rows.
    ///
    /// # Panics
    /// When an index is `>= self.rows` (as slice indexing does).
    pub fn subset(&self, indices: &[usize]) -> Dataset {
        let width = self.width;
        let range = |row: usize| {
            assert!(
                row < self.rows,
                "row {row} of the {}-row data set {}",
                self.rows,
                self.name
            );
            row * width..(row + 1) * width
        };
        let pixels = match &self.pixels {
            Pixels::U8(bytes) => Pixels::U8(
                indices
                    .iter()
                    .flat_map(|&row| bytes[range(row)].iter().copied())
                    .collect(),
            ),
            Pixels::F32(values) => Pixels::F32(
                indices
                    .iter()
                    .flat_map(|&row| values[range(row)].iter().copied())
                    .collect(),
            ),
        };
        let labels = self
            .labels
            .as_ref()
            .map(|labels| indices.iter().map(|&row| labels[row]).collect());
        Dataset {
            name: self.name.clone(),
            rows: indices.len(),
            width,
            pixels,
            labels,
            image_shape: self.image_shape,
            scaling: self.scaling.clone(),
            columns: self.columns.clone(),
        }
    }

    /// Splits the rows at random (shuffled by `seed`) into (train, test), the test part
    /// holding `test_fraction` of the rows, rounded. Each part keeps the rows in their
    /// original order and is named `<name>-train` / `<name>-test`. Errors
    /// ([`Error::InvalidArgument`]) when the fraction is not in (0, 1) or either part would
    /// be empty.
    pub fn split(&self, test_fraction: f64, seed: u64) -> Result<(Dataset, Dataset)> {
        if !(test_fraction > 0.0 && test_fraction < 1.0) {
            return Err(Error::InvalidArgument(format!(
                "test fraction {test_fraction}: it must be between 0 and 1 (exclusive)"
            )));
        }
        let test_rows = (self.rows as f64 * test_fraction).round() as usize;
        if test_rows == 0 || test_rows >= self.rows {
            return Err(Error::InvalidArgument(format!(
                "a test fraction of {test_fraction} of the {} rows of {} gives {test_rows} test rows and {} training rows; both parts need at least one row",
                self.rows,
                self.name,
                self.rows.saturating_sub(test_rows)
            )));
        }
        let mut order: Vec<usize> = (0..self.rows).collect();
        order.shuffle(&mut StdRng::seed_from_u64(seed));
        let (test_part, train_part) = order.split_at(test_rows);
        let mut train = self.subset(&sorted(train_part));
        let mut test = self.subset(&sorted(test_part));
        train.name = format!("{}-train", self.name);
        test.name = format!("{}-test", self.name);
        Ok((train, test))
    }
}

fn sorted(indices: &[usize]) -> Vec<usize> {
    let mut indices = indices.to_vec();
    indices.sort_unstable();
    indices
}

/// The order in which epoch `epoch` visits `rows` rows: a permutation of 0..rows,
/// deterministic in (`seed`, `epoch`) and different from epoch to epoch. Rows beyond
/// u32::MAX are not visited ([`Dataset::new`] refuses such data sets).
pub fn epoch_order(rows: usize, seed: u64, epoch: u64) -> Vec<u32> {
    let count = u32::try_from(rows).unwrap_or(u32::MAX);
    let mut order: Vec<u32> = (0..count).collect();
    let mixed = splitmix64(seed ^ splitmix64(epoch));
    order.shuffle(&mut StdRng::seed_from_u64(mixed));
    order
}

/// SplitMix64's output function: a bijection of u64 that spreads nearby inputs far apart,
/// so (seed, epoch) pairs give unrelated generator seeds.
fn splitmix64(value: u64) -> u64 {
    let mut z = value.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
