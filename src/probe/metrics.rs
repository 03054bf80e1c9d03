//! Scores of predictions and clusterings: accuracy; normalised mutual information and the
//! adjusted Rand index of two labellings, computed as scikit-learn computes
//! `normalized_mutual_info_score` (arithmetic-mean normalisation, natural logarithms) and
//! `adjusted_rand_score`; and the silhouette of a clustering on a seeded sample of rows,
//! a figure that needs no labels.

use rand::rngs::StdRng;
use rand::SeedableRng;

use crate::error::{Error, Result};
use crate::probe::vector::squared_distance;

/// The fraction of positions where `predicted` equals `truth`. Errors
/// ([`Error::InvalidArgument`]) for empty or unequal lengths.
pub fn accuracy(predicted: &[usize], truth: &[usize]) -> Result<f64> {
    check_pair("accuracy", predicted, truth)?;
    let correct = predicted.iter().zip(truth).filter(|(p, t)| p == t).count();
    Ok(correct as f64 / truth.len() as f64)
}

/// Normalised mutual information I(U; V) / ((H(U) + H(V)) / 2) of two labellings of the same
/// rows: 1 for the same partition under any renaming, near 0 for independent ones. As in
/// scikit-learn, two labellings that each put every row in one group score 1, and zero
/// mutual information scores 0. Errors ([`Error::InvalidArgument`]) for empty or unequal
/// lengths.
pub fn normalized_mutual_info(truth: &[usize], predicted: &[usize]) -> Result<f64> {
    check_pair("NMI", truth, predicted)?;
    let table = Contingency::new(truth, predicted);
    if table.row_sums.len() == 1 && table.column_sums.len() == 1 {
        return Ok(1.0);
    }
    let n = truth.len() as f64;
    let mut mutual_info = 0.0f64;
    for (i, row) in table
        .counts
        .chunks_exact(table.column_sums.len())
        .enumerate()
    {
        for (j, &count) in row.iter().enumerate() {
            if count > 0 {
                let joint = count as f64;
                let expected = table.row_sums[i] as f64 * table.column_sums[j] as f64;
                mutual_info += joint / n * (n * joint / expected).ln();
            }
        }
    }
    let mutual_info = mutual_info.max(0.0);
    if mutual_info == 0.0 {
        return Ok(0.0);
    }
    let mean_entropy = (entropy(&table.row_sums, n) + entropy(&table.column_sums, n)) / 2.0;
    Ok(mutual_info / mean_entropy)
}

/// The adjusted Rand index of two labellings of the same rows: the Rand index (agreement
/// over pairs of rows) corrected for chance, 1 for the same partition, about 0 for random
/// ones, negative below chance. Computed from the pair confusion matrix like scikit-learn,
/// in exact integers. Errors ([`Error::InvalidArgument`]) for empty or unequal lengths.
pub fn adjusted_rand_index(truth: &[usize], predicted: &[usize]) -> Result<f64> {
    check_pair("ARI", truth, predicted)?;
    let table = Contingency::new(truth, predicted);
    let square_sum = |counts: &[u64]| counts.iter().map(|&c| i128::from(c).pow(2)).sum::<i128>();
    let n = truth.len() as i128;
    let joint = square_sum(&table.counts);
    // Pairs together in both, apart in truth only (together in predicted), together in
    // truth only, apart in both; each pair counted twice, as scikit-learn does.
    let together_both = joint - n;
    let predicted_only = square_sum(&table.column_sums) - joint;
    let truth_only = square_sum(&table.row_sums) - joint;
    let apart_both = n * n - predicted_only - truth_only - joint;
    if predicted_only == 0 && truth_only == 0 {
        return Ok(1.0);
    }
    let numerator = 2 * (together_both * apart_both - truth_only * predicted_only);
    let denominator = (together_both + truth_only) * (truth_only + apart_both)
        + (together_both + predicted_only) * (predicted_only + apart_both);
    Ok(numerator as f64 / denominator as f64)
}

/// The mean silhouette (b − a) / max(a, b) over `sample` rows of `values` (rows, width)
/// drawn without replacement with `seed` (all rows when `sample` ≥ rows), measured within
/// that sample as scikit-learn's `silhouette_score(sample_size=...)` does: a is the mean
/// Euclidean distance to the rest of its cluster, b the least mean distance to another
/// cluster; a row alone in its cluster scores 0. `None` when the sample holds fewer than 2
/// clusters or every row is its own cluster. Errors ([`Error::InvalidArgument`]) when
/// `clusters` does not hold one entry per row.
pub fn silhouette(
    values: &[f32],
    width: usize,
    clusters: &[usize],
    sample: usize,
    seed: u64,
) -> Result<Option<f64>> {
    let rows = crate::probe::pca::check_rows("silhouette", values, width)?;
    if clusters.len() != rows {
        return Err(Error::InvalidArgument(format!(
            "silhouette: {} cluster labels for {rows} rows",
            clusters.len()
        )));
    }
    let chosen = sample_rows(rows, sample, seed);
    let groups = dense_labels(&chosen.iter().map(|&r| clusters[r]).collect::<Vec<_>>());
    let group_count = groups.iter().max().map_or(0, |g| g + 1);
    if group_count < 2 || group_count >= chosen.len() {
        return Ok(None);
    }
    let mut sizes = vec![0usize; group_count];
    for &g in &groups {
        sizes[g] += 1;
    }
    let row = |r: usize| &values[r * width..(r + 1) * width];
    let mut total = 0.0f64;
    let mut distance_sums = vec![0.0f64; group_count];
    for (i, &row_i) in chosen.iter().enumerate() {
        distance_sums.fill(0.0);
        for (j, &row_j) in chosen.iter().enumerate() {
            if i != j {
                distance_sums[groups[j]] += squared_distance(row(row_i), row(row_j)).sqrt();
            }
        }
        let own = groups[i];
        if sizes[own] == 1 {
            continue;
        }
        let a = distance_sums[own] / (sizes[own] - 1) as f64;
        let b = (0..group_count)
            .filter(|&g| g != own)
            .map(|g| distance_sums[g] / sizes[g] as f64)
            .fold(f64::INFINITY, f64::min);
        let spread = a.max(b);
        if spread > 0.0 {
            total += (b - a) / spread;
        }
    }
    Ok(Some(total / chosen.len() as f64))
}

/// `count` distinct row indices out of `rows`, drawn with `seed`, ascending; every row when
/// `count` ≥ `rows`.
pub(crate) fn sample_rows(rows: usize, count: usize, seed: u64) -> Vec<usize> {
    if count >= rows {
        return (0..rows).collect();
    }
    let mut chosen =
        rand::seq::index::sample(&mut StdRng::seed_from_u64(seed), rows, count).into_vec();
    chosen.sort_unstable();
    chosen
}

/// The entropy (nats) of a partition with group sizes `sizes` of `n` rows.
fn entropy(sizes: &[u64], n: f64) -> f64 {
    sizes
        .iter()
        .filter(|&&s| s > 0)
        .map(|&s| {
            let p = s as f64 / n;
            -p * p.ln()
        })
        .sum()
}

/// Errors unless `a` and `b` are non-empty and of equal length.
fn check_pair(what: &str, a: &[usize], b: &[usize]) -> Result<()> {
    if a.is_empty() || a.len() != b.len() {
        return Err(Error::InvalidArgument(format!(
            "{what}: labellings of {} and {} rows; they must be equal and non-zero",
            a.len(),
            b.len()
        )));
    }
    Ok(())
}

/// Labels renamed 0, 1, ... in increasing order of the original label.
fn dense_labels(labels: &[usize]) -> Vec<usize> {
    let mut distinct = labels.to_vec();
    distinct.sort_unstable();
    distinct.dedup();
    labels
        .iter()
        .map(|l| distinct.partition_point(|d| d < l))
        .collect()
}

/// The contingency table of two labellings: counts\[i\]\[j\] = rows with truth class i and
/// predicted class j (classes renamed densely), with its row and column sums.
struct Contingency {
    /// (truth classes, predicted classes), row-major.
    counts: Vec<u64>,
    row_sums: Vec<u64>,
    column_sums: Vec<u64>,
}

impl Contingency {
    fn new(truth: &[usize], predicted: &[usize]) -> Contingency {
        let (truth, predicted) = (dense_labels(truth), dense_labels(predicted));
        let rows = truth.iter().max().map_or(0, |m| m + 1);
        let columns = predicted.iter().max().map_or(0, |m| m + 1);
        let mut counts = vec![0u64; rows * columns];
        let (mut row_sums, mut column_sums) = (vec![0u64; rows], vec![0u64; columns]);
        for (&t, &p) in truth.iter().zip(&predicted) {
            counts[t * columns + p] += 1;
            row_sums[t] += 1;
            column_sums[p] += 1;
        }
        Contingency {
            counts,
            row_sums,
            column_sums,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_labels_keep_the_order() {
        assert_eq!(dense_labels(&[7, 3, 7, 100, 3]), [1, 0, 1, 2, 0]);
    }

    #[test]
    fn contingency_counts_pairs() {
        let table = Contingency::new(&[0, 0, 1, 2], &[5, 5, 9, 9]);
        assert_eq!(table.counts, [2, 0, 0, 1, 0, 1]);
        assert_eq!(table.row_sums, [2, 1, 1]);
        assert_eq!(table.column_sums, [2, 2]);
    }
}
