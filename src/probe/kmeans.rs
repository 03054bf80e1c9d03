//! k-means: k-means++ seeding (each next centre drawn with probability proportional to the
//! squared distance to the nearest centre so far), Lloyd iterations until no row changes
//! cluster or an iteration cap, several seeded restarts, the lowest inertia kept.
//!
//! A cluster that loses all its rows restarts at the row farthest from its centre. Ties in
//! distance go to the lower centre index; ties in inertia to the earlier restart.
//!
//! An iteration is one pass over the rows (memory-bound on wide data: MNIST's raw pixels are
//! 188 MB a pass): each block of rows gets its nearest centroids from one multiply and is
//! added to its clusters' sums while it is in cache. Sums are kept per fixed chunk of rows
//! and added in order, so that the fit is the same on any number of threads.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::cpu::matmul_tiles::{product, Operands};
use crate::error::{Error, Result};
use crate::parallel::{for_chunks, for_each_part};
use crate::probe::pca::check_rows;
use crate::probe::vector::squared_distance;

/// How to run k-means.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct KMeansOptions {
    /// Independent seedings; the one with the lowest inertia is kept (at least 1).
    pub restarts: usize,
    /// Lloyd iterations at most per restart.
    pub max_iterations: usize,
}

impl Default for KMeansOptions {
    /// 4 restarts of at most 100 iterations.
    fn default() -> Self {
        KMeansOptions {
            restarts: 4,
            max_iterations: 100,
        }
    }
}

/// A fitted k-means: `k` centroids of `width` values.
#[derive(Clone, Debug)]
pub struct KMeans {
    width: usize,
    /// (k, width) the cluster centres.
    centroids: Vec<f32>,
    /// Σ over the fitted rows of the squared distance to their centroid.
    inertia: f64,
}

/// Each row's nearest centroid and its squared distance.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Nearest {
    cluster: usize,
    distance: f64,
}

impl KMeans {
    /// Clusters `values` (rows, width) into `k` groups, with `seed` drawing the seedings.
    /// Errors ([`Error::InvalidArgument`]) for values that are not whole rows, `k` of 0 or
    /// more than the rows, no restarts, or a value that is not finite.
    pub fn fit(
        values: &[f32],
        width: usize,
        k: usize,
        options: KMeansOptions,
        seed: u64,
    ) -> Result<KMeans> {
        let row_count = check_rows("k-means", values, width)?;
        if k == 0 || k > row_count {
            return Err(Error::InvalidArgument(format!(
                "k-means with k = {k} on {row_count} rows: k must be between 1 and the row count"
            )));
        }
        if options.restarts == 0 {
            return Err(Error::InvalidArgument(
                "k-means needs at least 1 restart".to_string(),
            ));
        }
        if values.iter().any(|v| !v.is_finite()) {
            return Err(Error::InvalidArgument(
                "k-means: a value is NaN or infinite".to_string(),
            ));
        }
        let rows = Rows::new(values, width);
        let mut rng = StdRng::seed_from_u64(seed);
        let mut best: Option<KMeans> = None;
        for _ in 0..options.restarts {
            let centroids = plus_plus_seeds(values, width, k, &mut rng);
            let fitted = lloyd(&rows, centroids, options.max_iterations);
            if best.as_ref().is_none_or(|b| fitted.inertia < b.inertia) {
                best = Some(fitted);
            }
        }
        best.ok_or_else(|| Error::InvalidArgument("k-means ran no restart".to_string()))
    }

    /// The centroids (k, width), row-major.
    pub fn centroids(&self) -> &[f32] {
        &self.centroids
    }

    /// The number of clusters.
    pub fn k(&self) -> usize {
        self.centroids.len() / self.width
    }

    /// The inertia of the fitted rows: Σ squared distance to the nearest centroid (each
    /// distance ‖x‖² − 2c·x + ‖c‖² in f32, as the fit compares them).
    pub fn inertia(&self) -> f64 {
        self.inertia
    }

    /// The nearest centroid of each row of `values` (rows, width) and the inertia of those
    /// rows. Errors ([`Error::InvalidArgument`]) for values that are not whole rows of the
    /// fitted width, or a value that is not finite.
    pub fn assign(&self, values: &[f32]) -> Result<(Vec<usize>, f64)> {
        check_rows("k-means assignment", values, self.width)?;
        if values.iter().any(|v| !v.is_finite()) {
            return Err(Error::InvalidArgument(
                "k-means assignment: a value is NaN or infinite".to_string(),
            ));
        }
        let rows = Rows::new(values, self.width);
        let nearest = assign(&rows, &self.centroids).nearest;
        let inertia = nearest.iter().map(|n| n.distance).sum();
        Ok((nearest.iter().map(|n| n.cluster).collect(), inertia))
    }
}

/// k-means++: the first centre a row drawn uniformly, each next one a row drawn with
/// probability proportional to its squared distance to the nearest centre so far (uniformly
/// when every row sits on a centre). Returns (k, width).
fn plus_plus_seeds(values: &[f32], width: usize, k: usize, rng: &mut StdRng) -> Vec<f32> {
    let rows = values.len() / width;
    let row = |r: usize| &values[r * width..(r + 1) * width];
    let first = rng.random_range(0..rows);
    let mut centroids = row(first).to_vec();
    let mut nearest: Vec<f64> = (0..rows)
        .map(|r| squared_distance(row(r), row(first)))
        .collect();
    while centroids.len() < k * width {
        let total: f64 = nearest.iter().sum();
        let chosen = if total > 0.0 {
            let target = rng.random::<f64>() * total;
            let mut running = 0.0;
            nearest
                .iter()
                .position(|&d| {
                    running += d;
                    running > target
                })
                .unwrap_or(rows - 1)
        } else {
            rng.random_range(0..rows)
        };
        let centre = row(chosen).to_vec();
        for_chunks(&mut nearest, 1, |range, part| {
            for (r, best) in range.zip(part) {
                *best = best.min(squared_distance(row(r), &centre));
            }
        });
        centroids.extend(centre);
    }
    centroids
}

/// Lloyd's iterations from `centroids` (k, width): assign every row to its nearest centroid,
/// move each centroid to the mean of its rows, until no row changes cluster or
/// `max_iterations` moves.
fn lloyd(rows: &Rows, mut centroids: Vec<f32>, max_iterations: usize) -> KMeans {
    let mut assignment = assign(rows, &centroids);
    for _ in 0..max_iterations {
        centroids = cluster_means(rows, &assignment);
        let next = assign(rows, &centroids);
        let changed = next
            .nearest
            .iter()
            .zip(&assignment.nearest)
            .any(|(a, b)| a.cluster != b.cluster);
        assignment = next;
        if !changed {
            break;
        }
    }
    KMeans {
        width: rows.width,
        centroids,
        inertia: assignment.nearest.iter().map(|n| n.distance).sum(),
    }
}

/// The rows k-means works on, with their squared norms (computed once a fit).
struct Rows<'a> {
    /// (rows, width).
    values: &'a [f32],
    width: usize,
    /// (rows) Σ x\[i\]² of each row.
    norms: Vec<f32>,
}

impl<'a> Rows<'a> {
    fn new(values: &'a [f32], width: usize) -> Rows<'a> {
        let norms = values.chunks_exact(width).map(squared_norm).collect();
        Rows {
            values,
            width,
            norms,
        }
    }

    fn count(&self) -> usize {
        self.norms.len()
    }
}

/// Σ x\[i\]² of a row.
fn squared_norm(row: &[f32]) -> f32 {
    crate::probe::vector::dot_f32(row, row) as f32
}

/// Each row's nearest centroid, with each cluster's rows counted and summed.
struct Assignment {
    /// (rows).
    nearest: Vec<Nearest>,
    /// (k) rows a cluster.
    counts: Vec<usize>,
    /// (k, width) the sum of each cluster's rows.
    sums: Vec<f64>,
}

/// Rows of a chunk in [`assign`] at least: a chunk's sums are a part's work, added in chunk
/// order.
const SUM_CHUNK: usize = 4096;
/// The most bytes all chunks' sums take together: with many clusters, fewer and longer
/// chunks (1,000 clusters of 784 values on a million rows would be 1.5 GB in chunks of 4096).
const SUM_BYTES: usize = 64 << 20;

/// Rows a chunk of [`assign`] takes for `rows` rows of `width` and k clusters: SUM_CHUNK, or
/// more where the chunks' sums would pass SUM_BYTES. It depends on the data alone, not on
/// the threads, so that the sums are added in the same order on any machine.
fn chunk_rows(rows: usize, k: usize, width: usize) -> usize {
    let sums_bytes = k
        .saturating_mul(width)
        .saturating_mul(std::mem::size_of::<f64>());
    let max_chunks = (SUM_BYTES / sums_bytes.max(1)).max(1);
    SUM_CHUNK.max(rows.div_ceil(max_chunks))
}
/// Rows a multiply in [`assign`]: (k, ROW_BLOCK) products, the block's values (800 KB at
/// 784 wide) still in cache when they are summed.
const ROW_BLOCK: usize = 256;

/// The nearest of `centroids` (k, width) to each row, and the clusters' counts and sums.
/// The squared distance is ‖x‖² − 2 c·x + ‖c‖² (at least 0), the products c·x of every
/// centroid with a block of rows one multiply in the matmul twin's tiles: (k, block) =
/// centroids · blockᵀ, the k centroids down a tile's rows. (A loop of row-to-centroid
/// differences, then a second pass for the sums, took 46 ms an iteration on MNIST's raw
/// pixels.)
fn assign(rows: &Rows, centroids: &[f32]) -> Assignment {
    let width = rows.width;
    let k = centroids.len() / width;
    let centroid_norms: Vec<f32> = centroids.chunks_exact(width).map(squared_norm).collect();
    let chunk_rows = chunk_rows(rows.count(), k, width);
    let chunks = rows.count().div_ceil(chunk_rows);
    let mut nearest = vec![Nearest::default(); rows.count()];
    let mut counts = vec![0usize; chunks * k];
    let mut sums = vec![0.0f64; chunks * k * width];
    let parts: Vec<_> = nearest
        .chunks_mut(chunk_rows)
        .zip(counts.chunks_mut(k))
        .zip(sums.chunks_mut(k * width))
        .enumerate()
        .collect();
    for_each_part(parts, |(chunk, ((nearest, counts), sums))| {
        let mut products = vec![0.0f32; k * ROW_BLOCK];
        let first = chunk * chunk_rows;
        for (block, nearest) in nearest.chunks_mut(ROW_BLOCK).enumerate() {
            let first = first + block * ROW_BLOCK;
            let block_rows = nearest.len();
            let values = &rows.values[first * width..(first + block_rows) * width];
            let products = &mut products[..k * block_rows];
            let operands = Operands {
                a: centroids,
                b: values,
                trans_a: false,
                trans_b: true,
                m: k,
                n: block_rows,
                k: width,
            };
            product(products, &operands, 0..k);
            let norms = &rows.norms[first..first + block_rows];
            for (r, (slot, &row_norm)) in nearest.iter_mut().zip(norms).enumerate() {
                let mut best = Nearest {
                    cluster: 0,
                    distance: f64::INFINITY,
                };
                for (cluster, &centroid_norm) in centroid_norms.iter().enumerate() {
                    let dot = products[cluster * block_rows + r];
                    let distance = f64::from(((row_norm - 2.0 * dot) + centroid_norm).max(0.0));
                    if distance < best.distance {
                        best = Nearest { cluster, distance };
                    }
                }
                *slot = best;
            }
            for (row, n) in values.chunks_exact(width).zip(&*nearest) {
                counts[n.cluster] += 1;
                let sum = &mut sums[n.cluster * width..(n.cluster + 1) * width];
                for (s, &v) in sum.iter_mut().zip(row) {
                    *s += f64::from(v);
                }
            }
        }
    });
    let (mut total_counts, mut total_sums) = (vec![0usize; k], vec![0.0f64; k * width]);
    for (counts, sums) in counts.chunks_exact(k).zip(sums.chunks_exact(k * width)) {
        total_counts
            .iter_mut()
            .zip(counts)
            .for_each(|(t, c)| *t += c);
        total_sums.iter_mut().zip(sums).for_each(|(t, s)| *t += s);
    }
    Assignment {
        nearest,
        counts: total_counts,
        sums: total_sums,
    }
}

/// The mean (k, width) of each cluster's rows; a cluster with no rows takes the row
/// farthest from its centroid (the lowest such index), which then counts as taken.
fn cluster_means(rows: &Rows, assignment: &Assignment) -> Vec<f32> {
    let width = rows.width;
    let mut distances: Vec<f64> = assignment.nearest.iter().map(|n| n.distance).collect();
    let mut centroids = vec![0.0f32; assignment.sums.len()];
    for (cluster, centre) in centroids.chunks_exact_mut(width).enumerate() {
        let count = assignment.counts[cluster];
        if count > 0 {
            let sum = &assignment.sums[cluster * width..(cluster + 1) * width];
            for (c, s) in centre.iter_mut().zip(sum) {
                *c = (s / count as f64) as f32;
            }
        } else {
            let farthest =
                distances.iter().enumerate().fold(
                    0,
                    |best, (r, &d)| if d > distances[best] { r } else { best },
                );
            distances[farthest] = 0.0;
            centre.copy_from_slice(&rows.values[farthest * width..(farthest + 1) * width]);
        }
    }
    centroids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_cluster_takes_the_farthest_row() {
        // Rows 0, 1, 10 all nearest centroid 0; centroid 1 (at 1000) has none and takes row 10.
        let values = [0.0f32, 1.0, 10.0];
        let rows = Rows::new(&values, 1);
        let assignment = assign(&rows, &[0.0, 1000.0]);
        assert_eq!(assignment.counts, [3, 0]);
        let means = cluster_means(&rows, &assignment);
        assert!((means[0] - 11.0 / 3.0).abs() < 1e-6);
        assert_eq!(means[1], 10.0);
    }

    #[test]
    fn assign_finds_the_nearest_centroid_and_sums_its_rows() {
        // More rows than a sum chunk, a partial block at the end, a width off the tiles'.
        let (row_count, width, k) = (SUM_CHUNK + ROW_BLOCK + 37, 13, 7);
        let mut rng = StdRng::seed_from_u64(5);
        let values: Vec<f32> = (0..row_count * width)
            .map(|_| rng.random_range(-2.0..2.0))
            .collect();
        let centroids: Vec<f32> = (0..k * width)
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        let rows = Rows::new(&values, width);
        let assignment = assign(&rows, &centroids);
        let mut counts = vec![0usize; k];
        let mut sums = vec![0.0f64; k * width];
        for (r, (row, n)) in values
            .chunks_exact(width)
            .zip(&assignment.nearest)
            .enumerate()
        {
            let exact: Vec<f64> = centroids
                .chunks_exact(width)
                .map(|c| squared_distance(row, c))
                .collect();
            let least = exact.iter().copied().fold(f64::INFINITY, f64::min);
            // The chosen centroid is the nearest, up to f32 rounding of the expanded form.
            assert!(exact[n.cluster] - least < 1e-4, "row {r}: {exact:?} {n:?}");
            assert!(
                (n.distance - exact[n.cluster]).abs() < 1e-4,
                "row {r}: {n:?}"
            );
            counts[n.cluster] += 1;
            for (s, &v) in sums[n.cluster * width..].iter_mut().zip(row) {
                *s += f64::from(v);
            }
        }
        assert_eq!(assignment.counts, counts);
        for (got, want) in assignment.sums.iter().zip(&sums) {
            assert!((got - want).abs() < 1e-9, "{got} vs {want}");
        }
    }

    #[test]
    fn chunk_sums_stay_within_their_budget() {
        // Few clusters: chunks of SUM_CHUNK rows.
        assert_eq!(chunk_rows(60_000, 10, 784), SUM_CHUNK);
        // Many clusters on many rows: fewer chunks, their sums within SUM_BYTES.
        let (rows, k, width) = (1_000_000, 1000, 784);
        let chunk = chunk_rows(rows, k, width);
        assert!(rows.div_ceil(chunk) * k * width * 8 <= SUM_BYTES, "{chunk}");
        assert!(rows.div_ceil(chunk) >= 2, "{chunk}");
        // Sums wider than the budget: one chunk.
        assert_eq!(chunk_rows(5000, 20_000, 784), 5000);
    }

    #[test]
    fn seeds_are_distinct_rows_when_the_rows_are_distinct() {
        let values: Vec<f32> = (0..50).map(|i| i as f32).collect();
        let seeds = plus_plus_seeds(&values, 1, 5, &mut StdRng::seed_from_u64(3));
        let mut sorted = seeds.clone();
        sorted.sort_by(f32::total_cmp);
        sorted.dedup();
        assert_eq!(sorted.len(), 5, "{seeds:?}");
    }
}
