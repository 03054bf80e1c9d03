//! k-means: k-means++ seeding (each next centre drawn with probability proportional to the
//! squared distance to the nearest centre so far), Lloyd iterations until no row changes
//! cluster or an iteration cap, several seeded restarts, the lowest inertia kept.
//!
//! A cluster that loses all its rows restarts at the row farthest from its centre. Ties in
//! distance go to the lower centre index; ties in inertia to the earlier restart.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::error::{Error, Result};
use crate::parallel::for_chunks;
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
        let rows = check_rows("k-means", values, width)?;
        if k == 0 || k > rows {
            return Err(Error::InvalidArgument(format!(
                "k-means with k = {k} on {rows} rows: k must be between 1 and the row count"
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
        let mut rng = StdRng::seed_from_u64(seed);
        let mut best: Option<KMeans> = None;
        for _ in 0..options.restarts {
            let centroids = plus_plus_seeds(values, width, k, &mut rng);
            let fitted = lloyd(values, width, centroids, options.max_iterations);
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

    /// The inertia of the fitted rows: Σ squared distance to the nearest centroid.
    pub fn inertia(&self) -> f64 {
        self.inertia
    }

    /// The nearest centroid of each row of `values` (rows, width) and the inertia of those
    /// rows. Errors ([`Error::InvalidArgument`]) for values that are not whole rows of the
    /// fitted width.
    pub fn assign(&self, values: &[f32]) -> Result<(Vec<usize>, f64)> {
        check_rows("k-means assignment", values, self.width)?;
        let nearest = nearest_centroids(values, self.width, &self.centroids);
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
        for (r, best) in nearest.iter_mut().enumerate() {
            *best = best.min(squared_distance(row(r), &centre));
        }
        centroids.extend(centre);
    }
    centroids
}

/// Lloyd's iterations from `centroids` (k, width): assign every row to its nearest centroid,
/// move each centroid to the mean of its rows, until no row changes cluster or
/// `max_iterations` moves.
fn lloyd(values: &[f32], width: usize, mut centroids: Vec<f32>, max_iterations: usize) -> KMeans {
    let mut nearest = nearest_centroids(values, width, &centroids);
    for _ in 0..max_iterations {
        centroids = cluster_means(values, width, &nearest, centroids.len() / width);
        let next = nearest_centroids(values, width, &centroids);
        let changed = next
            .iter()
            .zip(&nearest)
            .any(|(a, b)| a.cluster != b.cluster);
        nearest = next;
        if !changed {
            break;
        }
    }
    KMeans {
        width,
        centroids,
        inertia: nearest.iter().map(|n| n.distance).sum(),
    }
}

/// The nearest of `centroids` (k, width) to each row of `values`, rows split over threads.
fn nearest_centroids(values: &[f32], width: usize, centroids: &[f32]) -> Vec<Nearest> {
    let rows = values.len() / width;
    let mut out = vec![Nearest::default(); rows];
    for_chunks(&mut out, 1, |range, part| {
        for (r, slot) in range.zip(part.iter_mut()) {
            let row = &values[r * width..(r + 1) * width];
            let mut best = Nearest {
                cluster: 0,
                distance: f64::INFINITY,
            };
            for (cluster, centre) in centroids.chunks_exact(width).enumerate() {
                let distance = squared_distance(row, centre);
                if distance < best.distance {
                    best = Nearest { cluster, distance };
                }
            }
            *slot = best;
        }
    });
    out
}

/// The mean (k, width) of each cluster's rows; a cluster with no rows takes the row
/// farthest from its centroid (the lowest such index), which then counts as taken.
fn cluster_means(values: &[f32], width: usize, nearest: &[Nearest], k: usize) -> Vec<f32> {
    let mut sums = vec![0.0f64; k * width];
    let mut counts = vec![0usize; k];
    for (row, n) in values.chunks_exact(width).zip(nearest) {
        counts[n.cluster] += 1;
        for (sum, &v) in sums[n.cluster * width..(n.cluster + 1) * width]
            .iter_mut()
            .zip(row)
        {
            *sum += f64::from(v);
        }
    }
    let mut distances: Vec<f64> = nearest.iter().map(|n| n.distance).collect();
    let mut centroids = vec![0.0f32; k * width];
    for cluster in 0..k {
        let centre = &mut centroids[cluster * width..(cluster + 1) * width];
        if counts[cluster] > 0 {
            let sum = &sums[cluster * width..(cluster + 1) * width];
            for (c, s) in centre.iter_mut().zip(sum) {
                *c = (s / counts[cluster] as f64) as f32;
            }
        } else {
            let farthest =
                distances.iter().enumerate().fold(
                    0,
                    |best, (r, &d)| if d > distances[best] { r } else { best },
                );
            distances[farthest] = 0.0;
            centre.copy_from_slice(&values[farthest * width..(farthest + 1) * width]);
        }
    }
    centroids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_cluster_takes_the_farthest_row() {
        // Rows 0, 1, 10 all nearest centroid 0; centroid 1 has none and takes row 10.
        let values = [0.0f32, 1.0, 10.0];
        let nearest = [
            Nearest {
                cluster: 0,
                distance: 0.0,
            },
            Nearest {
                cluster: 0,
                distance: 1.0,
            },
            Nearest {
                cluster: 0,
                distance: 100.0,
            },
        ];
        let means = cluster_means(&values, 1, &nearest, 2);
        assert!((means[0] - 11.0 / 3.0).abs() < 1e-6);
        assert_eq!(means[1], 10.0);
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
