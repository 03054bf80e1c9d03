//! Principal component analysis: the covariance of the rows in f64 (summed over blocks of
//! rows, the rows of the covariance split over threads), then every eigenpair of that
//! symmetric matrix by Householder tridiagonalisation and the implicit QL method (EISPACK's
//! tred2 and tql2, as in the public-domain JAMA library), and the top k kept. Exact and
//! deterministic (no random start, no convergence threshold to tune). MNIST's 60,000 × 784
//! training pixels take about 3 s on 2 cores: 2 s for the covariance, 1 s for the eigen solve.

use crate::error::{Error, Result};
use crate::parallel::{for_chunks, threads};
use crate::probe::vector::{dot_f32, dot_f64};

/// Data rows per block when summing the covariance.
const COVARIANCE_BLOCK: usize = 64;
/// QL iterations allowed per eigenvalue before giving up (a few are typical).
const QL_ITERATIONS: usize = 100;

/// A fitted PCA: the mean of the rows and the top `k` principal directions.
#[derive(Clone, Debug)]
pub struct Pca {
    width: usize,
    /// (width) the mean row.
    mean: Vec<f64>,
    /// (k, width) unit principal directions, largest variance first; each with its entry of
    /// largest magnitude positive.
    components: Vec<f64>,
    /// (k) the variance along each direction (divided by rows − 1, like sklearn).
    explained_variance: Vec<f64>,
    /// The total variance of the rows (the trace of the covariance).
    total_variance: f64,
}

impl Pca {
    /// Fits the top `k` components of `values` (rows, width), row-major. Errors
    /// ([`Error::InvalidArgument`]) for a width of 0, values that are not whole rows, fewer
    /// than 2 rows, `k` of 0 or more than `width`, or a value that is not finite.
    pub fn fit(values: &[f32], width: usize, k: usize) -> Result<Pca> {
        let rows = check_rows("PCA", values, width)?;
        if rows < 2 {
            return Err(Error::InvalidArgument(
                "PCA needs at least 2 rows".to_string(),
            ));
        }
        if k == 0 || k > width {
            return Err(Error::InvalidArgument(format!(
                "PCA: {k} components of rows of {width} values; choose 1 to {width}"
            )));
        }
        if values.iter().any(|v| !v.is_finite()) {
            return Err(Error::InvalidArgument(
                "PCA: a value is NaN or infinite".to_string(),
            ));
        }
        let mean = column_means(values, width);
        let covariance = covariance(values, width, &mean);
        let total_variance = (0..width).map(|i| covariance[i * width + i]).sum();
        let (eigenvalues, eigenvectors) = symmetric_eigen(covariance, width)?;
        let mut components = Vec::with_capacity(k * width);
        for vector in eigenvectors.chunks_exact(width).take(k) {
            components.extend(with_positive_peak(vector));
        }
        Ok(Pca {
            width,
            mean,
            components,
            explained_variance: eigenvalues[..k].to_vec(),
            total_variance,
        })
    }

    /// The number of columns the PCA was fitted on.
    pub fn width(&self) -> usize {
        self.width
    }

    /// The number of components.
    pub fn components_count(&self) -> usize {
        self.explained_variance.len()
    }

    /// The mean row (width).
    pub fn mean(&self) -> &[f64] {
        &self.mean
    }

    /// The principal directions (k, width), row-major, largest variance first.
    pub fn components(&self) -> &[f64] {
        &self.components
    }

    /// The variance of the data along each component (k), in decreasing order.
    pub fn explained_variance(&self) -> &[f64] {
        &self.explained_variance
    }

    /// Each component's share of the total variance (k).
    pub fn explained_variance_ratio(&self) -> Vec<f64> {
        self.explained_variance
            .iter()
            .map(|v| {
                if self.total_variance > 0.0 {
                    v / self.total_variance
                } else {
                    0.0
                }
            })
            .collect()
    }

    /// The coordinates (rows, k) of `values` (rows, width) along the components, about the
    /// fitted mean. Errors ([`Error::InvalidArgument`]) for values that are not whole rows of
    /// the fitted width.
    pub fn transform(&self, values: &[f32]) -> Result<Vec<f32>> {
        let rows = check_rows("PCA transform", values, self.width)?;
        let k = self.components_count();
        let mean: Vec<f32> = self.mean.iter().map(|&m| m as f32).collect();
        let components: Vec<f32> = self.components.iter().map(|&c| c as f32).collect();
        let mut out = vec![0.0f32; rows * k];
        for_chunks(&mut out, k, |range, part| {
            let mut centred = vec![0.0f32; self.width];
            for (row, coordinates) in range.zip(part.chunks_exact_mut(k)) {
                let x = &values[row * self.width..(row + 1) * self.width];
                for ((c, &v), &m) in centred.iter_mut().zip(x).zip(&mean) {
                    *c = v - m;
                }
                for (coordinate, direction) in coordinates
                    .iter_mut()
                    .zip(components.chunks_exact(self.width))
                {
                    *coordinate = dot_f32(&centred, direction) as f32;
                }
            }
        });
        Ok(out)
    }
}

/// The row count of `values` in rows of `width`; errors for a width of 0, no values or a
/// partial row.
pub(crate) fn check_rows(what: &str, values: &[f32], width: usize) -> Result<usize> {
    if width == 0 || values.is_empty() || !values.len().is_multiple_of(width) {
        return Err(Error::InvalidArgument(format!(
            "{what}: {} values do not make one or more rows of {width}",
            values.len()
        )));
    }
    Ok(values.len() / width)
}

/// The mean of each column of `values` (rows, width), in f64.
fn column_means(values: &[f32], width: usize) -> Vec<f64> {
    let mut sums = vec![0.0f64; width];
    for row in values.chunks_exact(width) {
        for (sum, &v) in sums.iter_mut().zip(row) {
            *sum += f64::from(v);
        }
    }
    let rows = (values.len() / width) as f64;
    sums.iter().map(|s| s / rows).collect()
}

/// The covariance (width, width) of `values` (rows, width) about `mean`, divided by
/// rows − 1. The rows of the upper triangle are split over threads so that each thread does
/// about the same work; each thread reads every block of data rows, centred and transposed
/// to (width, COVARIANCE_BLOCK) so that each entry is a contiguous dot product. Each entry is
/// summed by one thread in a fixed order, so the result does not depend on the thread count.
fn covariance(values: &[f32], width: usize, mean: &[f64]) -> Vec<f64> {
    let rows = values.len() / width;
    let mut upper = vec![0.0f64; width * width];
    let bounds = balanced_row_bounds(width, threads());
    std::thread::scope(|scope| {
        let mut rest: &mut [f64] = &mut upper;
        for pair in bounds.windows(2) {
            let (first, last) = (pair[0], pair[1]);
            let (part, tail) = rest.split_at_mut((last - first) * width);
            rest = tail;
            scope.spawn(move || covariance_rows(values, width, mean, first..last, part));
        }
    });
    let scale = 1.0 / (rows - 1) as f64;
    let mut full = vec![0.0f64; width * width];
    for i in 0..width {
        for j in i..width {
            let c = upper[i * width + j] * scale;
            full[i * width + j] = c;
            full[j * width + i] = c;
        }
    }
    full
}

/// Row boundaries [0, ..., width] cutting the upper triangle (row i holds width − i
/// entries) into `parts` pieces of about equal area.
fn balanced_row_bounds(width: usize, parts: usize) -> Vec<usize> {
    let total = width * (width + 1) / 2;
    let mut bounds = vec![0];
    let mut done = 0;
    for i in 0..width {
        done += width - i;
        let part = bounds.len();
        if done * parts >= total * part && i + 1 < width && part < parts {
            bounds.push(i + 1);
        }
    }
    bounds.push(width);
    bounds
}

/// Σ over rows of (x − mean)ᵢ (x − mean)ⱼ for i in `covariance_rows` and j ≥ i, added to
/// `out` ((rows in range), width), row-major; entries j < i hold partial sums to ignore.
fn covariance_rows(
    values: &[f32],
    width: usize,
    mean: &[f64],
    covariance_rows: std::ops::Range<usize>,
    out: &mut [f64],
) {
    let first = covariance_rows.start;
    // (width, COVARIANCE_BLOCK): column c of the block's centred rows; rows past the data
    // stay 0 and add nothing.
    let mut block = vec![[0.0f64; COVARIANCE_BLOCK]; width];
    for rows in values.chunks(width * COVARIANCE_BLOCK) {
        block.iter_mut().for_each(|column| column.fill(0.0));
        for (r, row) in rows.chunks_exact(width).enumerate() {
            for c in first..width {
                block[c][r] = f64::from(row[c]) - mean[c];
            }
        }
        add_block_products(&block, width, covariance_rows.clone(), out);
    }
}

/// Adds the products of the block's columns to `out` (rows of the covariance in `rows`,
/// width): entry (i, j) += column i · column j for j ≥ i. Two rows by four columns at a time,
/// so that each value loaded serves several products; entries left of the diagonal get
/// values too, which the caller ignores.
fn add_block_products(
    block: &[[f64; COVARIANCE_BLOCK]],
    width: usize,
    rows: std::ops::Range<usize>,
    out: &mut [f64],
) {
    let column = |c: usize| &block[c];
    let first = rows.start;
    let mut i = rows.start;
    while i < rows.end {
        let pair = i + 1 < rows.end;
        let mut j = i;
        if pair {
            while j + 4 <= width {
                let sums = dot_2x4(
                    [column(i), column(i + 1)],
                    [column(j), column(j + 1), column(j + 2), column(j + 3)],
                );
                for (a, row_sums) in sums.iter().enumerate() {
                    let out_row = &mut out[(i + a - first) * width + j..][..4];
                    for (o, s) in out_row.iter_mut().zip(row_sums) {
                        *o += s;
                    }
                }
                j += 4;
            }
        }
        for a in 0..if pair { 2 } else { 1 } {
            for jj in j..width {
                out[(i + a - first) * width + jj] += dot_f64(column(i + a), column(jj));
            }
        }
        i += if pair { 2 } else { 1 };
    }
}

/// The eight dot products of two columns with four, each summed in two lanes.
fn dot_2x4(a: [&[f64; COVARIANCE_BLOCK]; 2], b: [&[f64; COVARIANCE_BLOCK]; 4]) -> [[f64; 4]; 2] {
    let mut partial = [[[0.0f64; 2]; 4]; 2];
    for r in 0..COVARIANCE_BLOCK / 2 {
        for p in 0..2 {
            for q in 0..4 {
                for lane in 0..2 {
                    partial[p][q][lane] += a[p][2 * r + lane] * b[q][2 * r + lane];
                }
            }
        }
    }
    partial.map(|row| row.map(|lanes| lanes[0] + lanes[1]))
}

/// `vector` scaled by ±1 so that its entry of largest magnitude (the first such) is positive.
fn with_positive_peak(vector: &[f64]) -> Vec<f64> {
    let peak = vector.iter().copied().fold(
        0.0f64,
        |best, v| if v.abs() > best.abs() { v } else { best },
    );
    let sign = if peak < 0.0 { -1.0 } else { 1.0 };
    vector.iter().map(|v| v * sign).collect()
}

/// Every eigenpair of the symmetric matrix `a` (n, n): (eigenvalues in decreasing order,
/// eigenvectors (n, n) as rows in the same order). Errors ([`Error::InvalidArgument`]) when
/// the QL iteration does not converge (only for non-finite input).
pub(crate) fn symmetric_eigen(a: Vec<f64>, n: usize) -> Result<(Vec<f64>, Vec<f64>)> {
    let mut v = a;
    let mut d = vec![0.0f64; n];
    let mut e = vec![0.0f64; n];
    householder_tridiagonal(&mut v, n, &mut d, &mut e);
    // The QL rotations combine pairs of columns of V: on its transpose they combine rows,
    // which are contiguous.
    let mut vectors = transpose(&v, n);
    implicit_ql(&mut vectors, n, &mut d, &mut e)?;
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&i, &j| d[j].total_cmp(&d[i]).then(i.cmp(&j)));
    let eigenvalues = order.iter().map(|&i| d[i]).collect();
    let mut sorted = Vec::with_capacity(n * n);
    for &i in &order {
        sorted.extend_from_slice(&vectors[i * n..(i + 1) * n]);
    }
    Ok((eigenvalues, sorted))
}

fn transpose(a: &[f64], n: usize) -> Vec<f64> {
    let mut t = vec![0.0f64; n * n];
    for i in 0..n {
        for j in 0..n {
            t[j * n + i] = a[i * n + j];
        }
    }
    t
}

/// EISPACK tred2: reduces the symmetric `v` (n, n) to tridiagonal form by Householder
/// reflections, leaving the diagonal in `d`, the subdiagonal in `e[1..]` and the
/// accumulated orthogonal transformation in `v`.
fn householder_tridiagonal(v: &mut [f64], n: usize, d: &mut [f64], e: &mut [f64]) {
    let at = |i: usize, j: usize| i * n + j;
    d.copy_from_slice(&v[at(n - 1, 0)..at(n - 1, 0) + n]);
    for i in (1..n).rev() {
        let scale: f64 = d[..i].iter().map(|x| x.abs()).sum();
        let mut h = 0.0;
        if scale == 0.0 {
            e[i] = d[i - 1];
            for j in 0..i {
                d[j] = v[at(i - 1, j)];
                v[at(i, j)] = 0.0;
                v[at(j, i)] = 0.0;
            }
        } else {
            for dk in &mut d[..i] {
                *dk /= scale;
                h += *dk * *dk;
            }
            let f = d[i - 1];
            let g = if f > 0.0 { -h.sqrt() } else { h.sqrt() };
            e[i] = scale * g;
            h -= f * g;
            d[i - 1] = f - g;
            e[..i].fill(0.0);
            for j in 0..i {
                let f = d[j];
                v[at(j, i)] = f;
                let mut g = e[j] + v[at(j, j)] * f;
                for k in j + 1..i {
                    g += v[at(k, j)] * d[k];
                    e[k] += v[at(k, j)] * f;
                }
                e[j] = g;
            }
            let mut f = 0.0;
            for j in 0..i {
                e[j] /= h;
                f += e[j] * d[j];
            }
            let hh = f / (h + h);
            for j in 0..i {
                e[j] -= hh * d[j];
            }
            for j in 0..i {
                let (f, g) = (d[j], e[j]);
                for k in j..i {
                    v[at(k, j)] -= f * e[k] + g * d[k];
                }
                d[j] = v[at(i - 1, j)];
                v[at(i, j)] = 0.0;
            }
        }
        d[i] = h;
    }
    // Accumulate the transformations.
    for i in 0..n - 1 {
        v[at(n - 1, i)] = v[at(i, i)];
        v[at(i, i)] = 1.0;
        let h = d[i + 1];
        if h != 0.0 {
            for k in 0..=i {
                d[k] = v[at(k, i + 1)] / h;
            }
            for j in 0..=i {
                let mut g = 0.0;
                for k in 0..=i {
                    g += v[at(k, i + 1)] * v[at(k, j)];
                }
                for k in 0..=i {
                    v[at(k, j)] -= g * d[k];
                }
            }
        }
        for k in 0..=i {
            v[at(k, i + 1)] = 0.0;
        }
    }
    for j in 0..n {
        d[j] = v[at(n - 1, j)];
        v[at(n - 1, j)] = 0.0;
    }
    v[at(n - 1, n - 1)] = 1.0;
    e[0] = 0.0;
}

/// EISPACK tql2: the eigenvalues (into `d`) and eigenvectors of the tridiagonal matrix
/// (`d`, `e`) by the implicit QL method with shifts, applying the rotations to the rows of
/// `w` (the transpose of tred2's V), whose row i becomes the eigenvector of `d[i]`.
fn implicit_ql(w: &mut [f64], n: usize, d: &mut [f64], e: &mut [f64]) -> Result<()> {
    for i in 1..n {
        e[i - 1] = e[i];
    }
    e[n - 1] = 0.0;
    let mut f = 0.0f64;
    let mut largest = 0.0f64;
    let eps = f64::EPSILON;
    for l in 0..n {
        largest = largest.max(d[l].abs() + e[l].abs());
        let mut m = l;
        while m < n - 1 && e[m].abs() > eps * largest {
            m += 1;
        }
        if m > l {
            let mut iterations = 0;
            loop {
                iterations += 1;
                if iterations > QL_ITERATIONS {
                    return Err(Error::InvalidArgument(
                        "PCA: the eigenvalue iteration did not converge".to_string(),
                    ));
                }
                // The shift.
                let mut g = d[l];
                let mut p = (d[l + 1] - g) / (2.0 * e[l]);
                let mut r = p.hypot(1.0);
                if p < 0.0 {
                    r = -r;
                }
                d[l] = e[l] / (p + r);
                d[l + 1] = e[l] * (p + r);
                let dl1 = d[l + 1];
                let mut h = g - d[l];
                for di in &mut d[l + 2..n] {
                    *di -= h;
                }
                f += h;
                // The implicit QL transformation.
                p = d[m];
                let (mut c, mut c2, mut c3) = (1.0f64, 1.0f64, 1.0f64);
                let el1 = e[l + 1];
                let (mut s, mut s2) = (0.0f64, 0.0f64);
                for i in (l..m).rev() {
                    c3 = c2;
                    c2 = c;
                    s2 = s;
                    g = c * e[i];
                    h = c * p;
                    r = p.hypot(e[i]);
                    e[i + 1] = s * r;
                    s = e[i] / r;
                    c = p / r;
                    p = c * d[i] - s * g;
                    d[i + 1] = h + s * (c * g + s * d[i]);
                    rotate_rows(w, n, i, c, s);
                }
                p = -s * s2 * c3 * el1 * e[l] / dl1;
                e[l] = s * p;
                d[l] = c * p;
                if e[l].abs() <= eps * largest {
                    break;
                }
            }
        }
        d[l] += f;
        e[l] = 0.0;
    }
    Ok(())
}

/// Rows i and i + 1 of `w` (n, n) ← the rotation by (c, s) of the pair.
fn rotate_rows(w: &mut [f64], n: usize, i: usize, c: f64, s: f64) {
    let (upper, lower) = w[i * n..(i + 2) * n].split_at_mut(n);
    for (a, b) in upper.iter_mut().zip(lower.iter_mut()) {
        let h = *b;
        *b = s * *a + c * h;
        *a = c * *a - s * h;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eigen_of_a_known_matrix() {
        // [[2, 1], [1, 2]]: eigenvalues 3 and 1, vectors (1, 1)/√2 and (1, −1)/√2.
        let (values, vectors) = symmetric_eigen(vec![2.0, 1.0, 1.0, 2.0], 2).unwrap();
        assert!((values[0] - 3.0).abs() < 1e-12 && (values[1] - 1.0).abs() < 1e-12);
        let root_half = 0.5f64.sqrt();
        assert!((vectors[0].abs() - root_half).abs() < 1e-12);
        assert!((vectors[0] - vectors[1]).abs() < 1e-12);
        assert!((vectors[2] + vectors[3]).abs() < 1e-12);
    }

    #[test]
    fn eigen_reconstructs_a_random_symmetric_matrix() {
        // A = Σ λᵢ vᵢ vᵢᵀ and the vectors are orthonormal.
        let n = 7;
        let mut a = vec![0.0f64; n * n];
        for i in 0..n {
            for j in 0..=i {
                let x = ((i * 31 + j * 17) % 11) as f64 - 5.0;
                a[i * n + j] = x;
                a[j * n + i] = x;
            }
        }
        let (values, vectors) = symmetric_eigen(a.clone(), n).unwrap();
        assert!(values.windows(2).all(|w| w[0] >= w[1]));
        for i in 0..n {
            for j in 0..n {
                let rebuilt: f64 = (0..n)
                    .map(|k| values[k] * vectors[k * n + i] * vectors[k * n + j])
                    .sum();
                assert!((rebuilt - a[i * n + j]).abs() < 1e-9, "({i}, {j})");
                let dot: f64 = (0..n)
                    .map(|k| vectors[i * n + k] * vectors[j * n + k])
                    .sum();
                let expected = if i == j { 1.0 } else { 0.0 };
                assert!((dot - expected).abs() < 1e-12, "({i}, {j})");
            }
        }
    }

    #[test]
    fn balanced_bounds_cover_every_row() {
        for (width, parts) in [(1, 2), (2, 2), (10, 3), (784, 2), (5, 16)] {
            let bounds = balanced_row_bounds(width, parts);
            assert_eq!(bounds.first(), Some(&0));
            assert_eq!(bounds.last(), Some(&width));
            assert!(bounds.windows(2).all(|w| w[0] < w[1]), "{bounds:?}");
            assert!(bounds.len() <= parts + 1, "{bounds:?}");
        }
    }

    #[test]
    fn covariance_matches_the_definition() {
        let (rows, width) = (130, 11);
        let values: Vec<f32> = (0..rows * width)
            .map(|i| ((i * 37) % 23) as f32 / 7.0)
            .collect();
        let mean = column_means(&values, width);
        let fast = covariance(&values, width, &mean);
        for i in 0..width {
            for j in 0..width {
                let plain: f64 = values
                    .chunks_exact(width)
                    .map(|r| (f64::from(r[i]) - mean[i]) * (f64::from(r[j]) - mean[j]))
                    .sum::<f64>()
                    / (rows - 1) as f64;
                assert!((fast[i * width + j] - plain).abs() < 1e-12, "({i}, {j})");
            }
        }
    }
}
