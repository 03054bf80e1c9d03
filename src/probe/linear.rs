//! The linear probe: multinomial logistic regression on standardised features (the train
//! set's mean and standard deviation, applied to both sets), L2-regularised weights (not
//! the biases), fitted full-batch by L-BFGS from zero with a backtracking line search and a
//! fixed iteration budget. The loss and gradient are summed over fixed chunks of rows in a
//! fixed order, so the fit is the same on any number of threads.

use std::collections::VecDeque;

use crate::cpu::matmul_tiles::{product, Operands};
use crate::error::{Error, Result};
use crate::parallel::for_chunks;
use crate::probe::metrics::accuracy;
use crate::probe::Features;

/// Rows per chunk of the loss and gradient sums: a chunk of 784 f64 features (1.6 MB) stays
/// in a core's L2 cache from the logits' multiply to the gradient's (2048 rows a chunk:
/// the raw MNIST probe's fit 45 s; 256: 24 s).
const LOSS_CHUNK: usize = 256;
/// Pairs (s, y) L-BFGS remembers.
const HISTORY: usize = 10;
/// The fit stops when every gradient entry is below this.
const GRADIENT_TOLERANCE: f64 = 1e-6;
/// Armijo's sufficient-decrease constant.
const ARMIJO: f64 = 1e-4;
/// Step halvings tried per line search.
const LINE_SEARCH_STEPS: usize = 40;

/// How to fit the linear probe.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct LinearOptions {
    /// λ in mean cross-entropy + λ/2 ‖W‖².
    pub l2: f64,
    /// L-BFGS iterations at most.
    pub iterations: usize,
}

impl Default for LinearOptions {
    /// λ = 1e-4, 200 iterations.
    fn default() -> Self {
        LinearOptions {
            l2: 1e-4,
            iterations: 200,
        }
    }
}

/// A fitted multinomial logistic regression on standardised features.
#[derive(Clone, Debug)]
pub struct LinearProbe {
    width: usize,
    classes: usize,
    /// (width) the train mean of each feature.
    mean: Vec<f64>,
    /// (width) 1 / the train standard deviation of each feature (1 for a constant one).
    inverse_std: Vec<f64>,
    /// (classes, width + 1): each class's weights, then its bias.
    parameters: Vec<f64>,
}

impl LinearProbe {
    /// Fits the probe on `train` with classes 0..`classes`. Errors
    /// ([`Error::InvalidArgument`]) when `train` has no labels, a label is not below
    /// `classes`, or λ is negative or not finite.
    pub fn fit(train: &Features, classes: usize, options: LinearOptions) -> Result<LinearProbe> {
        let labels = train.require_labels("linear probe train set")?;
        if let Some(&label) = labels.iter().find(|&&l| usize::from(l) >= classes) {
            return Err(Error::InvalidArgument(format!(
                "linear probe: label {label} with {classes} classes"
            )));
        }
        if !(options.l2.is_finite() && options.l2 >= 0.0) {
            return Err(Error::InvalidArgument(format!(
                "linear probe: L2 weight {} must be finite and not negative",
                options.l2
            )));
        }
        let width = train.width();
        let (mean, inverse_std) = standardisation(train.values(), width);
        let problem = Problem {
            values: train.values(),
            mean: &mean,
            inverse_std: &inverse_std,
            labels,
            width,
            classes,
            l2: options.l2,
        };
        let parameters = lbfgs(&problem, options.iterations);
        Ok(LinearProbe {
            width,
            classes,
            mean,
            inverse_std,
            parameters,
        })
    }

    /// The most probable class of each row of `values` (rows, width); ties go to the lower
    /// class. Errors ([`Error::InvalidArgument`]) for values that are not whole rows of the
    /// fitted width.
    pub fn predict(&self, values: &[f32]) -> Result<Vec<usize>> {
        crate::probe::pca::check_rows("linear probe", values, self.width)?;
        let inputs = standardise(values, &self.mean, &self.inverse_std);
        let mut logits = vec![0.0f64; self.classes];
        Ok(inputs
            .chunks_exact(self.width)
            .map(|x| {
                class_logits(&self.parameters, x, &mut logits);
                logits
                    .iter()
                    .enumerate()
                    .fold(0, |best, (c, &z)| if z > logits[best] { c } else { best })
            })
            .collect())
    }
}

/// The test accuracy of a linear probe fitted on `train`, with classes 0 to the largest
/// label of either set. Errors ([`Error::InvalidArgument`]) when the widths differ or either
/// set has no labels.
pub fn linear_probe_accuracy(
    train: &Features,
    test: &Features,
    options: LinearOptions,
) -> Result<f64> {
    if train.width() != test.width() {
        return Err(Error::InvalidArgument(format!(
            "linear probe: train rows have {} values, test rows {}",
            train.width(),
            test.width()
        )));
    }
    let train_labels = train.require_labels("linear probe train set")?;
    let test_labels = test.require_labels("linear probe test set")?;
    let classes = train_labels
        .iter()
        .chain(test_labels)
        .map(|&l| usize::from(l) + 1)
        .max()
        .unwrap_or(1);
    let probe = LinearProbe::fit(train, classes, options)?;
    let predicted = probe.predict(test.values())?;
    let truth: Vec<usize> = test_labels.iter().map(|&l| usize::from(l)).collect();
    accuracy(&predicted, &truth)
}

/// The mean and 1 / standard deviation (population) of each column of `values`.
fn standardisation(values: &[f32], width: usize) -> (Vec<f64>, Vec<f64>) {
    let rows = (values.len() / width) as f64;
    let mut mean = vec![0.0f64; width];
    for row in values.chunks_exact(width) {
        for (m, &v) in mean.iter_mut().zip(row) {
            *m += f64::from(v);
        }
    }
    mean.iter_mut().for_each(|m| *m /= rows);
    let mut variance = vec![0.0f64; width];
    for row in values.chunks_exact(width) {
        for ((s, &v), m) in variance.iter_mut().zip(row).zip(&mean) {
            *s += (f64::from(v) - m).powi(2);
        }
    }
    let inverse_std = variance
        .iter()
        .map(|s| {
            let std = (s / rows).sqrt();
            if std > 1e-12 {
                1.0 / std
            } else {
                1.0
            }
        })
        .collect();
    (mean, inverse_std)
}

/// (rows, mean.len()) (x − mean) · inverse_std, in f64.
fn standardise(values: &[f32], mean: &[f64], inverse_std: &[f64]) -> Vec<f64> {
    let mut inputs = vec![0.0; values.len()];
    standardise_into(&mut inputs, values, mean, inverse_std);
    inputs
}

/// inputs = (values − mean) · inverse_std in f64, rows of mean.len() values.
fn standardise_into(inputs: &mut [f64], values: &[f32], mean: &[f64], inverse_std: &[f64]) {
    for (x, v) in inputs
        .chunks_exact_mut(mean.len())
        .zip(values.chunks_exact(mean.len()))
    {
        for (((x, &v), m), s) in x.iter_mut().zip(v).zip(mean).zip(inverse_std) {
            *x = (f64::from(v) - m) * s;
        }
    }
}

/// logits\[c\] = W_c · x + b_c for parameters (classes, width + 1).
fn class_logits(parameters: &[f64], x: &[f64], logits: &mut [f64]) {
    let width = x.len();
    for (logit, p) in logits.iter_mut().zip(parameters.chunks_exact(width + 1)) {
        *logit = p[width] + p[..width].iter().zip(x).map(|(w, v)| w * v).sum::<f64>();
    }
}

/// The regularised mean cross-entropy of a multinomial logistic regression.
struct Problem<'a> {
    /// (rows, width) as given: each chunk of rows is standardised as it is read (an f64
    /// copy of every row would be 376 MB for MNIST, streamed from memory at each loss).
    values: &'a [f32],
    /// (width) the train mean of each feature.
    mean: &'a [f64],
    /// (width) 1 / the train standard deviation of each feature.
    inverse_std: &'a [f64],
    labels: &'a [u8],
    width: usize,
    classes: usize,
    l2: f64,
}

impl Problem<'_> {
    fn parameter_count(&self) -> usize {
        self.classes * (self.width + 1)
    }

    /// (loss, gradient) at `parameters`: mean over rows of −log softmax(logits)\[label\], plus
    /// λ/2 ‖W‖².
    fn loss_and_gradient(&self, parameters: &[f64]) -> (f64, Vec<f64>) {
        let count = self.parameter_count();
        let rows = self.labels.len();
        let chunks = rows.div_ceil(LOSS_CHUNK);
        // (chunks, 1 + count): each chunk's loss sum, then its gradient sum.
        let mut partial = vec![0.0f64; chunks * (1 + count)];
        // (classes, width): W, each class's weights without its bias.
        let weights: Vec<f64> = parameters
            .chunks_exact(self.width + 1)
            .flat_map(|p| p[..self.width].iter().copied())
            .collect();
        // (classes): b, each class's bias.
        let biases: Vec<f64> = parameters
            .chunks_exact(self.width + 1)
            .map(|p| p[self.width])
            .collect();
        for_chunks(&mut partial, 1 + count, |range, part| {
            // (LOSS_CHUNK, width) a chunk's rows, standardised.
            let mut inputs = vec![0.0f64; LOSS_CHUNK * self.width];
            for (chunk, sums) in range.zip(part.chunks_exact_mut(1 + count)) {
                let first = chunk * LOSS_CHUNK;
                let rows = first..(first + LOSS_CHUNK).min(rows);
                self.add_rows(&weights, &biases, rows, &mut inputs, sums);
            }
        });
        let mut loss = 0.0;
        let mut gradient = vec![0.0f64; count];
        for sums in partial.chunks_exact(1 + count) {
            loss += sums[0];
            for (g, s) in gradient.iter_mut().zip(&sums[1..]) {
                *g += s;
            }
        }
        let scale = 1.0 / rows as f64;
        loss *= scale;
        gradient.iter_mut().for_each(|g| *g *= scale);
        for (p, g) in parameters
            .chunks_exact(self.width + 1)
            .zip(gradient.chunks_exact_mut(self.width + 1))
        {
            for (w, gw) in p[..self.width].iter().zip(&mut g[..self.width]) {
                loss += 0.5 * self.l2 * w * w;
                *gw += self.l2 * w;
            }
        }
        (loss, gradient)
    }

    /// Adds the loss of rows `range` to sums\[0\] and their gradient to sums\[1..\], the rows
    /// standardised into `inputs` first (room for LOSS_CHUNK rows). The logits of the rows
    /// are one multiply (W · xᵀ, `weights` (classes, width), then + `biases`), the weight
    /// gradient another (residuals · x), in the matmul twin's tiles: a row at a time, the
    /// gradient's 10 × 784 sums went through memory for each row (58 % of `probe --raw` on
    /// MNIST).
    fn add_rows(
        &self,
        weights: &[f64],
        biases: &[f64],
        range: std::ops::Range<usize>,
        inputs: &mut [f64],
        sums: &mut [f64],
    ) {
        let (width, classes, rows) = (self.width, self.classes, range.len());
        let x = &mut inputs[..rows * width];
        let values = &self.values[range.start * width..range.end * width];
        standardise_into(x, values, self.mean, self.inverse_std);
        let x = &*x;
        // (classes, rows): the logits, then the residuals softmax − one-hot(label). Classes
        // down the tiles' rows and the chunk's rows across them: x · Wᵀ, rows down, left 14
        // of each tile's 24 columns idle with 10 classes.
        let mut logits = vec![0.0f64; classes * rows];
        let forward = Operands {
            a: weights,
            b: x,
            trans_a: false,
            trans_b: true,
            m: classes,
            n: rows,
            k: width,
        };
        product(&mut logits, &forward, 0..classes);
        let mut z = vec![0.0f64; classes];
        for (r, &label) in self.labels[range].iter().enumerate() {
            for ((z, logit), b) in z
                .iter_mut()
                .zip(logits.iter().skip(r).step_by(rows))
                .zip(biases)
            {
                *z = logit + b;
            }
            let label = usize::from(label);
            let largest = z.iter().copied().fold(f64::MIN, f64::max);
            let normaliser: f64 = z.iter().map(|z| (z - largest).exp()).sum();
            sums[0] += normaliser.ln() + largest - z[label];
            for (c, z) in z.iter().enumerate() {
                logits[c * rows + r] = (z - largest).exp() / normaliser;
            }
            logits[label * rows + r] -= 1.0;
        }
        // (classes, width) = residuals · x.
        let mut gradient = vec![0.0f64; classes * width];
        let backward = Operands {
            a: &logits,
            b: x,
            trans_a: false,
            trans_b: false,
            m: classes,
            n: width,
            k: rows,
        };
        product(&mut gradient, &backward, 0..classes);
        for (c, g) in sums[1..].chunks_exact_mut(width + 1).enumerate() {
            for (g, &v) in g[..width].iter_mut().zip(&gradient[c * width..]) {
                *g += v;
            }
            g[width] += logits[c * rows..(c + 1) * rows].iter().sum::<f64>();
        }
    }
}

/// L-BFGS from zero for at most `iterations` steps: the two-loop recursion over the last
/// HISTORY pairs, a backtracking (halving) line search for Armijo's condition from a step
/// of 1 (1/‖g‖ on the first step), steepest descent when the direction does not descend.
fn lbfgs(problem: &Problem, iterations: usize) -> Vec<f64> {
    let mut x = vec![0.0f64; problem.parameter_count()];
    let (mut loss, mut gradient) = problem.loss_and_gradient(&x);
    let mut history: VecDeque<(Vec<f64>, Vec<f64>)> = VecDeque::with_capacity(HISTORY);
    for iteration in 0..iterations {
        if gradient.iter().all(|g| g.abs() < GRADIENT_TOLERANCE) {
            break;
        }
        let mut direction = two_loop_direction(&gradient, &history);
        let mut slope = dot(&gradient, &direction);
        if slope >= 0.0 {
            direction = gradient.iter().map(|g| -g).collect();
            slope = dot(&gradient, &direction);
            history.clear();
        }
        let mut step = if iteration == 0 {
            (1.0 / dot(&gradient, &gradient).sqrt()).min(1.0)
        } else {
            1.0
        };
        let mut accepted = None;
        for _ in 0..LINE_SEARCH_STEPS {
            let candidate: Vec<f64> = x
                .iter()
                .zip(&direction)
                .map(|(p, d)| p + step * d)
                .collect();
            let (candidate_loss, candidate_gradient) = problem.loss_and_gradient(&candidate);
            if candidate_loss <= loss + ARMIJO * step * slope {
                accepted = Some((candidate, candidate_loss, candidate_gradient));
                break;
            }
            step *= 0.5;
        }
        let Some((next, next_loss, next_gradient)) = accepted else {
            break;
        };
        let s: Vec<f64> = next.iter().zip(&x).map(|(a, b)| a - b).collect();
        let y: Vec<f64> = next_gradient
            .iter()
            .zip(&gradient)
            .map(|(a, b)| a - b)
            .collect();
        if dot(&s, &y) > 1e-12 {
            if history.len() == HISTORY {
                history.pop_front();
            }
            history.push_back((s, y));
        }
        (x, loss, gradient) = (next, next_loss, next_gradient);
    }
    x
}

/// −H·g by the L-BFGS two-loop recursion over `history` (oldest first), scaled by
/// sᵀy / yᵀy of the newest pair; −g without history.
fn two_loop_direction(gradient: &[f64], history: &VecDeque<(Vec<f64>, Vec<f64>)>) -> Vec<f64> {
    let mut q = gradient.to_vec();
    let mut alphas = Vec::with_capacity(history.len());
    for (s, y) in history.iter().rev() {
        let alpha = dot(s, &q) / dot(s, y);
        q.iter_mut().zip(y).for_each(|(qi, yi)| *qi -= alpha * yi);
        alphas.push(alpha);
    }
    if let Some((s, y)) = history.back() {
        let gamma = dot(s, y) / dot(y, y);
        q.iter_mut().for_each(|qi| *qi *= gamma);
    }
    for ((s, y), alpha) in history.iter().zip(alphas.iter().rev()) {
        let beta = dot(y, &q) / dot(s, y);
        q.iter_mut()
            .zip(s)
            .for_each(|(qi, si)| *qi += (alpha - beta) * si);
    }
    q.iter().map(|qi| -qi).collect()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    crate::probe::vector::dot_f64(a, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gradient_matches_finite_differences() {
        let values = [0.5, -1.0, 1.5, 0.25, -0.75, 2.0, 0.0, 1.0, -1.5];
        let labels = [0u8, 2, 1];
        let problem = Problem {
            values: &values,
            mean: &[0.25, -0.5, 0.0],
            inverse_std: &[2.0, 1.0, 0.5],
            labels: &labels,
            width: 3,
            classes: 3,
            l2: 0.1,
        };
        let x: Vec<f64> = (0..problem.parameter_count())
            .map(|i| (i as f64 * 0.37).sin())
            .collect();
        let (_, gradient) = problem.loss_and_gradient(&x);
        for i in 0..x.len() {
            let h = 1e-6;
            let (mut up, mut down) = (x.clone(), x.clone());
            up[i] += h;
            down[i] -= h;
            let numeric =
                (problem.loss_and_gradient(&up).0 - problem.loss_and_gradient(&down).0) / (2.0 * h);
            assert!(
                (numeric - gradient[i]).abs() < 1e-7,
                "{i}: {numeric} vs {}",
                gradient[i]
            );
        }
    }
}
