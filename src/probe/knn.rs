//! k-nearest-neighbour classification: every test row against every train row (brute
//! force), Euclidean distance as ‖b‖² − 2a·b + ‖a‖², the products a·b of a block of test
//! rows against a block of train rows computed as one matrix multiply by the matmul twin
//! (cpu/matmul.rs: register tiles, threads), then each test row's k nearest kept, the
//! test rows split over threads.
//!
//! Ties: between train rows at the same distance the lower row index is nearer; between
//! classes with the same number of votes the class of the nearest neighbour among them wins.

use crate::cpu::matmul::{matmul, MatmulShape};
use crate::error::{Error, Result};
use crate::parallel::for_chunks;
use crate::probe::metrics::accuracy;
use crate::probe::Features;

/// Test rows per block.
const QUERY_BLOCK: usize = 256;
/// Train rows per block: a block of test rows against one is a (QUERY_BLOCK, TRAIN_BLOCK)
/// product, 2 MiB of f32.
const TRAIN_BLOCK: usize = 2048;

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
    let width = train.width();
    let squared_norm = |row: &[f32]| row.iter().map(|v| v * v).sum::<f32>();
    let train_norms: Vec<f32> = train
        .values()
        .chunks_exact(width)
        .map(squared_norm)
        .collect();
    // (test rows, k): each test row's nearest (squared distance, train row) so far,
    // ascending; +∞ while unfilled.
    let mut nearest = vec![(f32::INFINITY, 0usize); test.rows() * k];
    let mut products = vec![0.0f32; QUERY_BLOCK * TRAIN_BLOCK];
    let query_blocks = test.values().chunks(width * QUERY_BLOCK);
    let nearest_blocks = nearest.chunks_mut(k * QUERY_BLOCK);
    for (queries, nearest) in query_blocks.zip(nearest_blocks) {
        let query_rows = queries.len() / width;
        let query_norms: Vec<f32> = queries.chunks_exact(width).map(squared_norm).collect();
        for (block, rows) in train.values().chunks(width * TRAIN_BLOCK).enumerate() {
            let (first_row, train_rows) = (block * TRAIN_BLOCK, rows.len() / width);
            // products (query_rows, train_rows) = queries · rowsᵀ.
            let shape = MatmulShape {
                trans_b: true,
                ..MatmulShape::new(query_rows, train_rows, width)
            };
            let products = &mut products[..query_rows * train_rows];
            matmul(products, queries, rows, None, &shape)?;
            let norms = &train_norms[first_row..first_row + train_rows];
            let products = &*products;
            for_chunks(nearest, k, |range, part| {
                for (query, best) in range.zip(part.chunks_exact_mut(k)) {
                    let scores = &products[query * train_rows..(query + 1) * train_rows];
                    for (t, (&product, &norm)) in scores.iter().zip(norms).enumerate() {
                        let distance = (norm - 2.0 * product) + query_norms[query];
                        // Strictly nearer than the k-th: an equal distance keeps the
                        // earlier row.
                        if distance < best[k - 1].0 {
                            insert_sorted(best, distance, first_row + t);
                        }
                    }
                }
            });
        }
    }
    Ok(nearest.iter().map(|&(_, row)| row).collect())
}

/// Inserts (distance, row) into the ascending `best` after every entry at the same or a
/// smaller distance, dropping the last.
fn insert_sorted(best: &mut [(f32, usize)], distance: f32, row: usize) {
    let position = best.partition_point(|&(b, _)| b <= distance);
    for i in (position + 1..best.len()).rev() {
        best[i] = best[i - 1];
    }
    best[position] = (distance, row);
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
        let mut best = vec![(f32::INFINITY, 0usize); 3];
        for (distance, row) in [(2.0, 10), (1.0, 11), (2.0, 12), (0.5, 13)] {
            insert_sorted(&mut best, distance, row);
        }
        assert_eq!(best, [(0.5, 13), (1.0, 11), (2.0, 10)]);
    }
}
