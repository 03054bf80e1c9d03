//! k-nearest-neighbour classification: every test row against every train row (brute
//! force), Euclidean distance as ‖b‖² − 2a·b (+ ‖a‖²) over blocks of train rows stored
//! transposed, the queries split over threads.
//!
//! Ties: between train rows at the same distance the lower row index is nearer; between
//! classes with the same number of votes the class of the nearest neighbour among them wins.

use crate::error::{Error, Result};
use crate::parallel::for_chunks;
use crate::probe::metrics::accuracy;
use crate::probe::Features;

/// Train rows per block: the block, transposed, is (width, TRAIN_BLOCK) f32.
const TRAIN_BLOCK: usize = 1024;

/// The accuracy on `test` of the majority vote of the `k` nearest `train` rows, for each k in
/// `ks`. Errors ([`Error::InvalidArgument`]) when a k is 0 or more than the train rows, when
/// the widths differ or when either set has no labels.
pub fn knn_accuracies(train: &Features, test: &Features, ks: &[usize]) -> Result<Vec<f64>> {
    let (train_labels, test_labels) = (
        train.require_labels("kNN train set")?,
        test.require_labels("kNN test set")?,
    );
    if ks.is_empty() || ks.contains(&0) {
        return Err(Error::InvalidArgument(format!(
            "kNN with k in {ks:?}: each k must be at least 1"
        )));
    }
    let k_max = ks.iter().copied().max().unwrap_or(1);
    let neighbours = nearest_neighbours(train, test, k_max)?;
    let truth: Vec<usize> = test_labels.iter().map(|&l| usize::from(l)).collect();
    let mut accuracies = Vec::with_capacity(ks.len());
    for &k in ks {
        let predicted: Vec<usize> = neighbours
            .chunks_exact(k_max)
            .map(|nearest| vote(&nearest[..k], train_labels))
            .collect();
        accuracies.push(accuracy(&predicted, &truth)?);
    }
    Ok(accuracies)
}

/// The indices of the `k` nearest train rows of each test row, nearest first: (test rows, k).
/// Errors ([`Error::InvalidArgument`]) when k is 0 or more than the train rows, or when the
/// widths differ.
pub fn nearest_neighbours(train: &Features, test: &Features, k: usize) -> Result<Vec<usize>> {
    if train.width() != test.width() {
        return Err(Error::InvalidArgument(format!(
            "kNN: train rows have {} values, test rows {}",
            train.width(),
            test.width()
        )));
    }
    if k == 0 || k > train.rows() {
        return Err(Error::InvalidArgument(format!(
            "kNN with k = {k} and {} train rows: k must be between 1 and the row count",
            train.rows()
        )));
    }
    let blocks = TrainBlocks::new(train.values(), train.width());
    let width = train.width();
    let queries = test.values();
    let mut out = vec![0usize; test.rows() * k];
    for_chunks(&mut out, k, |range, part| {
        let mut scores = vec![0.0f32; TRAIN_BLOCK];
        for (query, nearest) in range.zip(part.chunks_exact_mut(k)) {
            let q = &queries[query * width..(query + 1) * width];
            blocks.nearest(q, &mut scores, nearest);
        }
    });
    Ok(out)
}

/// The train rows in blocks of TRAIN_BLOCK, each transposed so that one query's scores
/// against a block are a sum over columns of contiguous runs.
struct TrainBlocks {
    width: usize,
    rows: usize,
    /// (blocks, width, TRAIN_BLOCK): value c of train row b·TRAIN_BLOCK + t at
    /// [b][c][t]; rows past the end are 0.
    transposed: Vec<f32>,
    /// (blocks · TRAIN_BLOCK): ‖row‖², +∞ past the end so that those are never near.
    norms: Vec<f32>,
}

impl TrainBlocks {
    fn new(values: &[f32], width: usize) -> TrainBlocks {
        let rows = values.len() / width;
        let blocks = rows.div_ceil(TRAIN_BLOCK);
        let mut transposed = vec![0.0f32; blocks * width * TRAIN_BLOCK];
        let mut norms = vec![f32::INFINITY; blocks * TRAIN_BLOCK];
        for (r, row) in values.chunks_exact(width).enumerate() {
            let (block, t) = (r / TRAIN_BLOCK, r % TRAIN_BLOCK);
            for (c, &v) in row.iter().enumerate() {
                transposed[(block * width + c) * TRAIN_BLOCK + t] = v;
            }
            norms[r] = row.iter().map(|v| v * v).sum();
        }
        TrainBlocks {
            width,
            rows,
            transposed,
            norms,
        }
    }

    /// Writes the indices of the `nearest.len()` train rows nearest to `query`, nearest
    /// first, into `nearest`; `scores` is scratch of TRAIN_BLOCK.
    fn nearest(&self, query: &[f32], scores: &mut [f32], nearest: &mut [usize]) {
        let k = nearest.len();
        // (k) squared distances of the rows in `nearest`, ascending; +∞ while unfilled.
        let mut best = vec![f32::INFINITY; k];
        let query_norm: f32 = query.iter().map(|v| v * v).sum();
        let blocks = self.norms.len() / TRAIN_BLOCK;
        for block in 0..blocks {
            // scores[t] = ‖b_t‖² − 2 q·b_t.
            scores.copy_from_slice(&self.norms[block * TRAIN_BLOCK..(block + 1) * TRAIN_BLOCK]);
            let columns = &self.transposed
                [block * self.width * TRAIN_BLOCK..(block + 1) * self.width * TRAIN_BLOCK];
            for (&q, column) in query.iter().zip(columns.chunks_exact(TRAIN_BLOCK)) {
                let weight = -2.0 * q;
                for (score, &b) in scores.iter_mut().zip(column) {
                    *score += weight * b;
                }
            }
            let first_row = block * TRAIN_BLOCK;
            for (t, &score) in scores.iter().enumerate() {
                let distance = score + query_norm;
                // Strictly nearer than the k-th: an equal distance keeps the earlier row.
                if distance < best[k - 1] && first_row + t < self.rows {
                    insert_sorted(&mut best, nearest, distance, first_row + t);
                }
            }
        }
    }
}

/// Inserts (distance, row) into the ascending `best` (with `rows` beside it) after every
/// entry at the same or a smaller distance, dropping the last.
fn insert_sorted(best: &mut [f32], rows: &mut [usize], distance: f32, row: usize) {
    let k = best.len();
    let position = best.partition_point(|&b| b <= distance);
    for i in (position + 1..k).rev() {
        best[i] = best[i - 1];
        rows[i] = rows[i - 1];
    }
    best[position] = distance;
    rows[position] = row;
}

/// The majority class among `nearest` (train row indices, nearest first); a tie between
/// classes goes to the class of the nearest row among them.
fn vote(nearest: &[usize], train_labels: &[u8]) -> usize {
    let mut counts = [0usize; 256];
    for &row in nearest {
        counts[usize::from(train_labels[row])] += 1;
    }
    let most = counts.iter().copied().max().unwrap_or(0);
    nearest
        .iter()
        .map(|&row| usize::from(train_labels[row]))
        .find(|&class| counts[class] == most)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ties_go_to_the_nearest_class() {
        // Votes: class 3 twice, class 1 twice; the nearest row (index 2) is class 1.
        let labels = [3u8, 3, 1, 1, 0];
        assert_eq!(vote(&[2, 0, 1, 3, 4], &labels), 1);
        assert_eq!(vote(&[0, 2, 1, 3, 4], &labels), 3);
        assert_eq!(vote(&[4, 0, 1], &labels), 3);
    }

    #[test]
    fn insertion_keeps_the_earlier_row_on_equal_distance() {
        let (mut best, mut rows) = (vec![f32::INFINITY; 3], vec![0usize; 3]);
        for (distance, row) in [(2.0, 10), (1.0, 11), (2.0, 12), (0.5, 13)] {
            insert_sorted(&mut best, &mut rows, distance, row);
        }
        assert_eq!(best, [0.5, 1.0, 2.0]);
        assert_eq!(rows, [13, 11, 10]);
    }
}
