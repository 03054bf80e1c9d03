//! Codes put to work: how much a representation (a model's codes, or PCA of the raw pixels
//! at the same width as a baseline) tells about the data, measured on the CPU.
//!
//! - [`knn`]: k-nearest-neighbour accuracy (k = 1 and 5), the train rows as the index.
//! - [`linear`]: a linear probe (multinomial logistic regression) → test accuracy.
//! - [`kmeans`]: k-means++ with restarts; its clusters scored against the labels (NMI, ARI)
//!   and, without labels, by inertia and silhouette ([`metrics`]).
//! - [`pca`]: PCA, for the baseline and for 2-D scatters ([`crate::io::scatter`]).
//!
//! [`probe`] runs them all for one representation and returns a [`ProbeRow`]; a
//! [`ProbeReport`] prints rows as a table or saves them as JSON.
//!
//! Written by hand rather than with linfa (linfa-clustering, linfa-reduction,
//! linfa-logistic), which would do the job: they bring ndarray and its companions
//! (ndarray-rand, ndarray-stats), argmin, linfa-linalg or ndarray-linalg, and (as of linfa
//! 0.7) rand 0.8 beside our 0.9, tens of crates in a build that CI compiles cold on 2 cores,
//! for what is here about 2,000 lines with docs and unit tests. The code here is also
//! deterministic across thread counts, returns errors instead of panicking on bad input,
//! and reads like the rest of the crate.

pub mod kmeans;
pub mod knn;
pub mod linear;
pub mod metrics;
pub mod pca;
mod vector;

use std::fmt;

use crate::data::Dataset;
use crate::error::{Error, Result};

pub use kmeans::{KMeans, KMeansOptions};
pub use knn::{knn_accuracies, nearest_neighbours};
pub use linear::{linear_probe_accuracy, LinearOptions, LinearProbe};
pub use metrics::{accuracy, adjusted_rand_index, normalized_mutual_info, silhouette};
pub use pca::Pca;

/// Where a [`Error::Data`] from the probes says it comes from.
const ORIGIN: &str = "probe features";

/// Rows of features (a representation of a data set) with optional labels.
#[derive(Clone, Debug, PartialEq)]
pub struct Features {
    /// (rows, width), row-major, every value finite.
    values: Vec<f32>,
    width: usize,
    /// One per row, when known.
    labels: Option<Vec<u8>>,
}

impl Features {
    /// Rows of `width` values with optional labels. Errors ([`Error::InvalidArgument`]) for a
    /// width of 0 or no values; ([`Error::Data`]) for values that do not fill whole rows, a
    /// value that is NaN or infinite, or labels that are not one per row.
    pub fn new(values: Vec<f32>, width: usize, labels: Option<Vec<u8>>) -> Result<Features> {
        if width == 0 || values.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "features: {} values in rows of {width}; a probe needs at least one row",
                values.len()
            )));
        }
        if !values.len().is_multiple_of(width) {
            return Err(data_error(format!(
                "{} values do not fill whole rows of {width}",
                values.len()
            )));
        }
        let rows = values.len() / width;
        if let Some(index) = values.iter().position(|v| !v.is_finite()) {
            return Err(data_error(format!(
                "row {} column {} is {}",
                index / width,
                index % width,
                values[index]
            )));
        }
        if let Some(labels) = &labels {
            if labels.len() != rows {
                return Err(data_error(format!(
                    "{} labels for {rows} rows",
                    labels.len()
                )));
            }
        }
        Ok(Features {
            values,
            width,
            labels,
        })
    }

    /// The pixels (in [0, 1]) and labels of a data set.
    pub fn from_dataset(data: &Dataset) -> Result<Features> {
        Features::new(data.to_f32(), data.width, data.labels.clone())
    }

    /// The values (rows, width), row-major.
    pub fn values(&self) -> &[f32] {
        &self.values
    }

    /// Values per row.
    pub fn width(&self) -> usize {
        self.width
    }

    /// The number of rows.
    pub fn rows(&self) -> usize {
        self.values.len() / self.width
    }

    /// The labels, one per row, if any.
    pub fn labels(&self) -> Option<&[u8]> {
        self.labels.as_deref()
    }

    /// The labels, or [`Error::InvalidArgument`] naming `what` needs them.
    pub(crate) fn require_labels(&self, what: &str) -> Result<&[u8]> {
        self.labels().ok_or_else(|| {
            Error::InvalidArgument(format!("{what}: no labels, and this figure needs them"))
        })
    }
}

fn data_error(message: String) -> Error {
    Error::Data {
        origin: ORIGIN.to_string(),
        message,
    }
}

/// Whether [`probe`] computes the figures that need labels (kNN, linear probe, NMI, ARI).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub enum Supervised {
    /// When both sets have labels; left out (`None`) otherwise.
    #[default]
    WhenLabelled,
    /// Always: a set without labels is an error.
    Always,
    /// Never: only the unsupervised figures.
    Never,
}

/// How to probe a representation.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct ProbeOptions {
    /// Which supervised figures to compute.
    pub supervised: Supervised,
    /// k-means clusters; `None`: the number of distinct train labels, or 10 without labels
    /// (at most the train rows).
    pub clusters: Option<usize>,
    pub kmeans: KMeansOptions,
    pub linear: LinearOptions,
    /// Test rows the silhouette is measured on (a seeded sample; the cost grows with its
    /// square).
    pub silhouette_sample: usize,
    /// Seeds k-means and the silhouette sample.
    pub seed: u64,
}

impl Default for ProbeOptions {
    fn default() -> Self {
        ProbeOptions {
            supervised: Supervised::WhenLabelled,
            clusters: None,
            kmeans: KMeansOptions::default(),
            linear: LinearOptions::default(),
            silhouette_sample: 2000,
            seed: 0,
        }
    }
}

/// The figures of one representation. Supervised figures are measured on the test set with
/// the train set as the index (kNN) or the fit (linear probe, k-means); `None` where they
/// were not computed (no labels). k-means is fitted on the train rows and scored on the test
/// rows' nearest centroids.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ProbeRow {
    /// What the representation is ("vae codes", "pca of pixels", ...).
    pub name: String,
    /// Values per row.
    pub width: usize,
    pub train_rows: usize,
    pub test_rows: usize,
    /// Test accuracy of the nearest train row's label.
    pub knn1: Option<f64>,
    /// Test accuracy of the majority label of the 5 nearest train rows.
    pub knn5: Option<f64>,
    /// Test accuracy of the linear probe.
    pub linear: Option<f64>,
    /// k-means clusters.
    pub clusters: usize,
    /// Normalised mutual information of the test rows' clusters and labels.
    pub nmi: Option<f64>,
    /// Adjusted Rand index of the test rows' clusters and labels.
    pub ari: Option<f64>,
    /// Mean squared distance of a test row to its nearest centroid.
    pub inertia_per_row: f64,
    /// The test rows' inertia over their total sum of squares about their mean: the share of
    /// the variance the clusters leave unexplained, comparable across scales and widths
    /// (`None` when every test row is the same).
    pub within_fraction: Option<f64>,
    /// Mean silhouette of the test rows' clusters on a seeded sample (`None` with fewer
    /// than 2 clusters in the sample).
    pub silhouette: Option<f64>,
}

/// Probes one representation: `train` and `test` are its rows for the train and the test
/// set. Errors ([`Error::InvalidArgument`]) when the widths differ, when there are fewer
/// than 5 train rows (kNN-5) or fewer train rows than clusters, when labels are needed
/// ([`Supervised::Always`]) and missing, or for bad options.
pub fn probe(
    name: &str,
    train: &Features,
    test: &Features,
    options: &ProbeOptions,
) -> Result<ProbeRow> {
    probe_with_progress(name, train, test, options, &mut |_| {})
}

/// [`probe`], telling `progress` each stage as it starts: "k-means", "silhouette", "kNN",
/// "linear probe" (a wide representation takes minutes: `latent probe --raw`).
pub fn probe_with_progress(
    name: &str,
    train: &Features,
    test: &Features,
    options: &ProbeOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<ProbeRow> {
    if train.width() != test.width() {
        return Err(Error::InvalidArgument(format!(
            "probe {name}: train rows have {} values, test rows {}",
            train.width(),
            test.width()
        )));
    }
    let labelled = train.labels().is_some() && test.labels().is_some();
    let supervised = match options.supervised {
        Supervised::WhenLabelled => labelled,
        Supervised::Always => {
            train.require_labels("probe train set")?;
            test.require_labels("probe test set")?;
            true
        }
        Supervised::Never => false,
    };
    let clusters = cluster_count(train, options.clusters);
    progress("k-means");
    let kmeans = KMeans::fit(
        train.values(),
        train.width(),
        clusters,
        options.kmeans,
        options.seed,
    )?;
    let (test_clusters, test_inertia) = kmeans.assign(test.values())?;
    let total = total_sum_of_squares(test.values(), test.width());
    progress("silhouette");
    let silhouette = metrics::silhouette(
        test.values(),
        test.width(),
        &test_clusters,
        options.silhouette_sample,
        options.seed,
    )?;
    let mut row = ProbeRow {
        name: name.to_string(),
        width: train.width(),
        train_rows: train.rows(),
        test_rows: test.rows(),
        knn1: None,
        knn5: None,
        linear: None,
        clusters,
        nmi: None,
        ari: None,
        inertia_per_row: test_inertia / test.rows() as f64,
        within_fraction: (total > 0.0).then(|| test_inertia / total),
        silhouette,
    };
    if supervised {
        progress("kNN");
        let accuracies = knn_accuracies(train, test, &[1, 5])?;
        row.knn1 = Some(accuracies[0]);
        row.knn5 = Some(accuracies[1]);
        progress("linear probe");
        row.linear = Some(linear_probe_accuracy(train, test, options.linear)?);
        let truth: Vec<usize> = test
            .require_labels("probe test set")?
            .iter()
            .map(|&l| usize::from(l))
            .collect();
        row.nmi = Some(normalized_mutual_info(&truth, &test_clusters)?);
        row.ari = Some(adjusted_rand_index(&truth, &test_clusters)?);
    }
    Ok(row)
}

/// The PCA baseline of `width` components: PCA fitted on the train rows (raw pixels, say),
/// both sets projected on it; the labels go along. Errors as [`Pca::fit`] does, and when
/// the widths of the two sets differ.
pub fn pca_baseline(
    train: &Features,
    test: &Features,
    width: usize,
) -> Result<(Features, Features)> {
    if train.width() != test.width() {
        return Err(Error::InvalidArgument(format!(
            "PCA baseline: train rows have {} values, test rows {}",
            train.width(),
            test.width()
        )));
    }
    let pca = Pca::fit(train.values(), train.width(), width)?;
    let project = |features: &Features| {
        Features::new(
            pca.transform(features.values())?,
            width,
            features.labels.clone(),
        )
    };
    Ok((project(train)?, project(test)?))
}

/// The k-means clusters: `requested`, else the distinct train labels, else 10; the default
/// is capped at the train rows (a requested count is not, so that k-means can refuse it).
fn cluster_count(train: &Features, requested: Option<usize>) -> usize {
    if let Some(k) = requested {
        return k;
    }
    let default = match train.labels() {
        Some(labels) => {
            let mut seen = [false; 256];
            labels.iter().for_each(|&l| seen[usize::from(l)] = true);
            seen.iter().filter(|&&s| s).count()
        }
        None => 10,
    };
    default.min(train.rows())
}

/// Σ over rows of the squared distance to the mean row.
fn total_sum_of_squares(values: &[f32], width: usize) -> f64 {
    let rows = values.len() / width;
    let mut mean = vec![0.0f64; width];
    for row in values.chunks_exact(width) {
        mean.iter_mut()
            .zip(row)
            .for_each(|(m, &v)| *m += f64::from(v) / rows as f64);
    }
    values
        .chunks_exact(width)
        .flat_map(|row| {
            row.iter()
                .zip(&mean)
                .map(|(&v, m)| (f64::from(v) - m).powi(2))
        })
        .sum()
}

/// Rows of probe figures, one per representation: a plain-text table (`Display`) and JSON.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct ProbeReport {
    pub rows: Vec<ProbeRow>,
}

impl ProbeReport {
    /// The report as pretty-printed JSON (absent figures as `null`).
    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string_pretty(self)
            .map_err(|e| Error::InvalidArgument(format!("probe report as JSON: {e}")))
    }
}

/// The table's columns after the name: (heading, the cell of a row).
type Column = (&'static str, fn(&ProbeRow) -> String);

const COLUMNS: [Column; 9] = [
    ("width", |r| r.width.to_string()),
    ("kNN-1", |r| figure(r.knn1)),
    ("kNN-5", |r| figure(r.knn5)),
    ("linear", |r| figure(r.linear)),
    ("k", |r| r.clusters.to_string()),
    ("NMI", |r| figure(r.nmi)),
    ("ARI", |r| figure(r.ari)),
    ("within", |r| figure(r.within_fraction)),
    ("silhouette", |r| figure(r.silhouette)),
];

/// A figure with 3 decimals, or "-" when absent.
fn figure(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_string(), |v| format!("{v:.3}"))
}

impl fmt::Display for ProbeReport {
    /// One line per representation under a heading; names left-aligned, figures
    /// right-aligned, "-" for a figure not computed. "within" is the share of the test
    /// rows' variance the k clusters leave unexplained.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name_width = self
            .rows
            .iter()
            .map(|r| r.name.chars().count())
            .chain(["representation".len()])
            .max()
            .unwrap_or(0);
        let cells: Vec<Vec<String>> = self
            .rows
            .iter()
            .map(|r| COLUMNS.iter().map(|(_, cell)| cell(r)).collect())
            .collect();
        let widths: Vec<usize> = COLUMNS
            .iter()
            .enumerate()
            .map(|(c, (heading, _))| {
                cells
                    .iter()
                    .map(|row| row[c].len())
                    .chain([heading.len()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        write!(f, "{:<name_width$}", "representation")?;
        for ((heading, _), width) in COLUMNS.iter().zip(&widths) {
            write!(f, "  {heading:>width$}")?;
        }
        writeln!(f)?;
        for (row, row_cells) in self.rows.iter().zip(&cells) {
            write!(f, "{:<name_width$}", row.name)?;
            for (cell, width) in row_cells.iter().zip(&widths) {
                write!(f, "  {cell:>width$}")?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}
