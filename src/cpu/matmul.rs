//! CPU twin of shaders/matmul.wgsl and shaders/matmul_rowtile.wgsl:
//! C (m, n) = f(op(A) (m, k) · op(B) (k, n) [+ bias (n)] [+ C]), row-major, op = identity or
//! transpose (A stored (k, m) when `trans_a`, B stored (n, k) when `trans_b`), f an optional
//! activation (the fused epilogue of a linear layer); or, with a loss (`MatmulShape::loss`),
//! C = the loss gradient of op(A)·op(B) [+ bias] and the loss added to running totals; or,
//! with the reparameterization's backward (`MatmulShape::reparam_grad`), C = dstats (m, 2l)
//! (+)= [dz | dz·ε·½e^(½·logvar)] for dz the first l columns of op(A)·op(B), dz itself never
//! stored.
//! The product is computed in register tiles (cpu/matmul_tiles.rs), each element summed
//! over k in order as a triple loop would sum it (fused multiply-adds where the CPU has
//! them), a large multiply's rows split between threads, each row computed as alone: the
//! bits do not depend on the thread count. The CPU path's hot loop (`cargo bench --bench
//! kernels -- cpu_matmul`).

use std::ops::Range;

use num_traits::Float;

use crate::cpu::matmul_tiles::{product, Operands};
use crate::cpu::{check_lens, check_nonzero, Real};
use crate::error::Result;
use crate::kernels::activation::Activation;

/// The shape and options of one matrix multiply.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MatmulShape {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    /// A is stored (k, m) and used transposed.
    pub trans_a: bool,
    /// B is stored (n, k) and used transposed.
    pub trans_b: bool,
    /// Add the product to C instead of overwriting it.
    pub accumulate: bool,
    /// An activation applied to each stored value (shaders/lib/epilogue.wgsl).
    pub activation: Option<Activation>,
    /// Multiply the product by f'(saved) before bias and accumulation, saved (m, n) being
    /// f's output: an activation's backward in the store of a dx matmul.
    pub activation_grad: Option<Activation>,
    /// Also write row_sums (m) = Σ_k op(A)\[row, k\]: the bias gradient when op(A) = dyᵀ.
    pub row_sums: bool,
    /// Add an addend (m, n) to the product before `activation_grad`: the part of a gradient
    /// other layers wrote. Order: product, + addend, · f'(saved), + bias, + C, f.
    pub addend: bool,
    /// A loss of z = op(A)·op(B) (+ bias) against a target (m, n) in place of the store: C
    /// = loss_scale · dloss/dz, and each row's loss added to running totals (m, n) (see
    /// [`MatmulExtras`]). Only with bias: activation, activation_grad, addend, row_sums and
    /// accumulate off.
    pub loss: Option<StoreLoss>,
    /// A sparse autoencoder's L1 penalty on the code in the store of the dx matmul whose
    /// product is the code's gradient (the decoder's), in place of `addend`: l1_scale ·
    /// sign(code) added to the product (cpu/l1.rs's l1_backward) before
    /// `activation_grad`, and each row's penalty Σ|code| (l1_forward) added to running
    /// totals (m, n), as `loss` does; the code (m, n) is [`MatmulExtras::saved`], also
    /// f's output where `activation_grad` is set. Only with `activation_grad` or alone:
    /// activation, addend, row_sums, loss, reparam_grad, accumulate and bias off.
    pub l1_grad: bool,
    /// The VAE reparameterization's backward in the store (reparameterize_backward's
    /// formulas), `Some(l)`: v, the first l ≤ n columns of op(A)·op(B) (m, n), is the dz of
    /// z = μ + e^(½·logvar)·ε; C is dstats (m, 2l), μ | logvar per row, and C\[row·2l +
    /// col\] (+)= v, C\[row·2l + l + col\] (+)= v·ε·½·e^(½·logvar) ("+=" with `accumulate`),
    /// ε (m, l) and stats (m, 2l) given in [`MatmulExtras`]. The columns from l on are
    /// dropped: a conditional VAE's product is d(z | label), and nothing reads the label's
    /// gradient (l = n for a VAE). Only alone (accumulate and transposes allowed):
    /// activation, activation_grad, addend, row_sums, loss and bias off.
    pub reparam_grad: Option<usize>,
}

/// The loss a matmul's store may compute in place of the product (shaders/lib/epilogue.wgsl,
/// LOSS): the output layer's loss and its gradient in the output layer's dispatch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreLoss {
    /// Binary cross-entropy from logits, as cpu/bce.rs: loss = max(z, 0) − z·x + ln(1 +
    /// e^−|z|), gradient scale · (σ(z) − x).
    Bce,
    /// Squared error, as cpu/mse.rs: loss = (z − x)², gradient scale · 2 · (z − x).
    Mse,
}

impl MatmulShape {
    /// C (m, n) = A (m, k) · B (k, n), overwriting C.
    pub fn new(m: usize, n: usize, k: usize) -> Self {
        MatmulShape {
            m,
            n,
            k,
            ..Default::default()
        }
    }

    /// Floating-point operations of one multiply (2·m·n·k).
    pub fn flops(&self) -> f64 {
        2.0 * self.m as f64 * self.n as f64 * self.k as f64
    }

    /// Checks the dimensions, the options (see [`MatmulShape::check_options`]) and the
    /// buffer lengths (exact; C is (m, 2l) with `reparam_grad` Some(l)).
    pub fn check(&self, c: usize, a: usize, b: usize, bias: Option<usize>) -> Result<()> {
        self.check_dims()?;
        self.check_options(bias.is_some())?;
        check_lens(
            "matmul",
            &[
                ("C", c, self.c_len()),
                ("A", a, self.m * self.k),
                ("B", b, self.k * self.n),
            ],
        )?;
        if let Some(bias) = bias {
            check_lens("matmul", &[("bias", bias, self.n)])?;
        }
        Ok(())
    }

    /// Elements of C: m·n, or m·2l (dstats) with `reparam_grad` Some(l).
    pub fn c_len(&self) -> usize {
        match self.reparam_grad {
            Some(latent) => self.m * 2 * latent,
            None => self.m * self.n,
        }
    }

    /// Checks that the options go together (`with_bias`: a bias is given): a loss in the
    /// store only with bias (activation, activation_grad, addend, row_sums and accumulate
    /// off); the L1 penalty only with activation_grad; the reparameterization's backward alone (activation, activation_grad, addend,
    /// row_sums, loss and bias off: its store is reparameterize_backward's, on the bare
    /// product; its width l from 1 to n).
    pub fn check_options(&self, with_bias: bool) -> Result<()> {
        if let Some(latent) = self.reparam_grad {
            if latent == 0 || latent > self.n {
                return Err(crate::error::shape_error(
                    "matmul",
                    format!(
                        "{self:?}: the reparameterization's backward epilogue takes dz from the \
                         first {latent} of the product's {} columns; it needs 1 to {}",
                        self.n, self.n
                    ),
                ));
            }
        }
        if self.l1_grad
            && (with_bias
                || self.activation.is_some()
                || self.addend
                || self.row_sums
                || self.loss.is_some()
                || self.reparam_grad.is_some()
                || self.accumulate)
        {
            return Err(crate::error::shape_error(
                "matmul",
                format!(
                    "{self:?}: the L1 penalty's epilogue adds its gradient to op(A)·op(B) \
                     before f'(code), without a bias; activation, addend, row_sums, loss, \
                     reparam_grad and accumulate must be off with it"
                ),
            ));
        }
        if self.reparam_grad.is_some()
            && (with_bias
                || self.activation.is_some()
                || self.activation_grad.is_some()
                || self.addend
                || self.row_sums
                || self.loss.is_some())
        {
            return Err(crate::error::shape_error(
                "matmul",
                format!(
                    "{self:?}: the reparameterization's backward epilogue stores \
                     [dz | dz·ε·½e^(½·logvar)] for dz = op(A)·op(B) into dstats, without a \
                     bias; activation, activation_grad, addend, row_sums and loss must be off \
                     with it"
                ),
            ));
        }
        if let Some(loss) = self.loss {
            if self.activation.is_some()
                || self.activation_grad.is_some()
                || self.addend
                || self.row_sums
                || self.accumulate
            {
                return Err(crate::error::shape_error(
                    "matmul",
                    format!(
                        "{self:?}: the {loss:?} loss epilogue stores the loss gradient of \
                         op(A)·op(B) (+ bias); activation, activation_grad, addend, row_sums \
                         and accumulate must be off with it"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Checks that every dimension is at least 1 and that sizes fit in u32 indices.
    pub fn check_dims(&self) -> Result<()> {
        check_nonzero("matmul", &[("m", self.m), ("n", self.n), ("k", self.k)])?;
        let largest = self.c_len().max(self.m * self.k).max(self.k * self.n);
        if largest > u32::MAX as usize {
            return Err(crate::error::shape_error(
                "matmul",
                format!("{self:?} has a matrix of {largest} elements, beyond 2^32"),
            ));
        }
        Ok(())
    }
}

/// The buffers of the store epilogue's extras: the activation output whose derivative
/// multiplies the product (`shape.activation_grad`), the row sums of op(A)
/// (`shape.row_sums`), the addend (`shape.addend`), the loss's target, running totals and
/// gradient scale (`shape.loss`), the L1 penalty's code, running totals and scale
/// (`shape.l1_grad`), and the reparameterization's ε and stats (`shape.reparam_grad`).
pub struct MatmulExtras<'a, T> {
    /// (m, n) f's output, with `shape.activation_grad`; the code, with `shape.l1_grad`.
    pub saved: Option<&'a [T]>,
    pub row_sums: Option<&'a mut [T]>,
    pub addend: Option<&'a [T]>,
    /// (m, n) the loss's target, with `shape.loss`.
    pub target: Option<&'a [T]>,
    /// (m, n) running loss totals, with `shape.loss` or `shape.l1_grad`: each row's loss (or
    /// penalty) is added to its slots.
    /// Only the per-row sums are the contract (Σ of row r's n slots); the GPU kernels spread
    /// a row over the slots of the threads that store it, this twin adds the row's loss to
    /// slot r·n + 0.
    pub loss_totals: Option<&'a mut [T]>,
    /// The gradient's factor, dL/dΣloss, with `shape.loss`.
    pub loss_scale: T,
    /// The L1 gradient's factor, dL/dΣpenalty, with `shape.l1_grad`.
    pub l1_scale: T,
    /// (m, l) the ε the reparameterization drew (and saved), with `shape.reparam_grad`
    /// Some(l).
    pub eps: Option<&'a [T]>,
    /// (m, 2l) μ | logvar, with `shape.reparam_grad` Some(l).
    pub stats: Option<&'a [T]>,
}

impl<T: num_traits::Zero> Default for MatmulExtras<'_, T> {
    fn default() -> Self {
        MatmulExtras {
            saved: None,
            row_sums: None,
            addend: None,
            target: None,
            loss_totals: None,
            loss_scale: T::zero(),
            l1_scale: T::zero(),
            eps: None,
            stats: None,
        }
    }
}

/// C = op(A)·op(B) (+ bias) (+ C when `shape.accumulate`).
pub fn matmul<T: Real>(
    c: &mut [T],
    a: &[T],
    b: &[T],
    bias: Option<&[T]>,
    shape: &MatmulShape,
) -> Result<()> {
    matmul_with_extras(c, a, b, bias, MatmulExtras::default(), shape)
}

/// C = f((op(A)·op(B) (+ addend)) · g'(saved) (+ bias) (+ C)), with f = `shape.activation` and g =
/// `shape.activation_grad` where set, and the row sums of op(A) when `shape.row_sums`; or,
/// with `shape.loss`, C = loss_scale · dloss/dz for z = op(A)·op(B) (+ bias) and each row's
/// loss added to loss_totals\[row·n\] (the formulas of cpu/bce.rs and cpu/mse.rs); or, with
/// `shape.l1_grad`, the L1 penalty's gradient l1_scale · sign(code) in the addend's place and
/// each row's penalty added to loss_totals\[row·n\] (cpu/l1.rs's formulas); or, with
/// `shape.reparam_grad` Some(l), C = dstats (m, 2l) (+)= [dz | dz·ε·½e^(½·logvar)] for dz the
/// first l columns of op(A)·op(B) (the formulas of cpu/reparameterize.rs's
/// reparameterize_backward).
pub fn matmul_with_extras<T: Real>(
    c: &mut [T],
    a: &[T],
    b: &[T],
    bias: Option<&[T]>,
    extras: MatmulExtras<T>,
    shape: &MatmulShape,
) -> Result<()> {
    shape.check(c.len(), a.len(), b.len(), bias.map(<[T]>::len))?;
    let MatmulShape {
        m,
        n,
        k,
        trans_a,
        trans_b,
        accumulate,
        activation,
        activation_grad,
        row_sums,
        addend,
        loss,
        l1_grad,
        reparam_grad,
    } = *shape;
    if (activation_grad.is_some() || l1_grad) != extras.saved.is_some()
        || row_sums != extras.row_sums.is_some()
        || addend != extras.addend.is_some()
        || loss.is_some() != extras.target.is_some()
        || (loss.is_some() || l1_grad) != extras.loss_totals.is_some()
        || reparam_grad.is_some() != extras.eps.is_some()
        || reparam_grad.is_some() != extras.stats.is_some()
    {
        return Err(crate::error::shape_error(
            "matmul",
            "the saved activation output goes with activation_grad (or the code with l1_grad), \
             the row sums buffer with row_sums, the addend with addend, the target with loss, \
             the loss totals with loss or l1_grad, and eps and stats with reparam_grad, each \
             only with it",
        ));
    }
    // dz's columns, with the reparameterization's backward.
    let latent = reparam_grad.unwrap_or(n);
    let lens = [
        ("saved", extras.saved.map(<[T]>::len), m * n),
        ("addend", extras.addend.map(<[T]>::len), m * n),
        ("row_sums", extras.row_sums.as_deref().map(<[T]>::len), m),
        ("target", extras.target.map(<[T]>::len), m * n),
        (
            "loss_totals",
            extras.loss_totals.as_deref().map(<[T]>::len),
            m * n,
        ),
        ("eps", extras.eps.map(<[T]>::len), m * latent),
        ("stats", extras.stats.map(<[T]>::len), m * 2 * latent),
    ];
    for (name, len, expected) in lens {
        if let Some(len) = len {
            check_lens("matmul", &[(name, len, expected)])?;
        }
    }
    let saved = activation_grad.zip(extras.saved);
    let l1 = extras
        .saved
        .filter(|_| l1_grad)
        .map(|code| (extras.l1_scale, code));
    let added = match (extras.addend, l1) {
        (Some(addend), _) => Added::Addend(addend),
        (None, Some((scale, code))) => Added::L1 { scale, code },
        (None, None) => Added::Nothing,
    };
    let (target, scale) = (extras.target, extras.loss_scale);
    let operands = Operands {
        a,
        b,
        trans_a,
        trans_b,
        m,
        n,
        k,
    };
    // The product goes straight into C unless the store reads C's old values or writes
    // something else there (dstats).
    let in_place = !accumulate && reparam_grad.is_none();
    // Rows `rows` of C (c_part, from row rows.start; 2l wide for reparam_grad), their row
    // sums and loss totals (totals_part: n a row, the total in the first of each).
    let run_rows = |rows: Range<usize>,
                    c_part: &mut [T],
                    mut sums_part: Option<&mut [T]>,
                    mut totals_part: Option<&mut [T]>|
     -> Result<()> {
        let mut products = Vec::new();
        if in_place {
            product(c_part, &operands, rows.clone());
        } else {
            products = vec![T::zero(); rows.len() * n];
            product(&mut products, &operands, rows.clone());
        }
        // A row's stored values before the activation, where there is one.
        let mut pre_activation = Vec::new();
        for row in rows.clone() {
            let local = row - rows.start;
            if let Some(sums) = sums_part.as_deref_mut() {
                sums[local] = (0..k).fold(T::zero(), |sum, p| sum + operands.a_at(row, p));
            }
            let (span, local_span) = (row * n..(row + 1) * n, local * n..(local + 1) * n);
            if let (Some(l), Some(eps), Some(stats)) = (reparam_grad, extras.eps, extras.stats) {
                // Row `row` of dstats from this row's dz, its first l columns, by
                // reparameterize_backward's twin.
                crate::cpu::reparameterize::reparameterize_backward(
                    &mut c_part[local * 2 * l..(local + 1) * 2 * l],
                    &eps[row * l..(row + 1) * l],
                    &stats[row * 2 * l..(row + 1) * 2 * l],
                    &products[local * n..local * n + l],
                    1,
                    l,
                    accumulate,
                )?;
                continue;
            }
            if in_place {
                store_steps(
                    &mut c_part[local_span.clone()],
                    span.clone(),
                    added,
                    saved,
                    bias,
                )?;
            } else {
                let values = &mut products[local_span.clone()];
                store_steps(values, span.clone(), added, saved, bias)?;
                let c_row = &mut c_part[local_span.clone()];
                if accumulate {
                    add_to(values, c_row);
                }
                c_row.copy_from_slice(values);
            }
            let c_row = &mut c_part[local_span];
            if let Some(activation) = activation {
                // A loss never goes with an activation.
                pre_activation.clear();
                pre_activation.extend_from_slice(c_row);
                activate(activation, c_row, &pre_activation)?;
            }
            if let (Some(kind), Some(target), Some(totals)) =
                (loss, target, totals_part.as_deref_mut())
            {
                let row_loss = store_loss(kind, c_row, &target[span.clone()], scale);
                totals[local * n] = totals[local * n] + row_loss;
            }
            if let (Some((_, code)), Some(totals)) = (l1, totals_part.as_deref_mut()) {
                let mut penalty = [T::zero()];
                crate::cpu::l1::l1_forward(&mut penalty, &code[span], 1, n)?;
                totals[local * n] = totals[local * n] + penalty[0];
            }
        }
        Ok(())
    };
    let c_width = reparam_grad.map_or(n, |l| 2 * l);
    let (sums, totals) = (extras.row_sums, extras.loss_totals);
    let threads = threads_for_multiply(m, n, k);
    if threads == 1 {
        return run_rows(0..m, c, sums, totals);
    }
    // Contiguous blocks of rows, one a thread; each row is computed as on one thread, so
    // the results do not depend on the thread count.
    let block = m.div_ceil(threads);
    let c_parts = c.chunks_mut(block * c_width);
    let mut sums_parts = sums.map(|s| s.chunks_mut(block));
    let mut totals_parts = totals.map(|t| t.chunks_mut(block * n));
    let parts: Vec<_> = c_parts
        .enumerate()
        .map(|(i, c_part)| {
            let rows = i * block..((i + 1) * block).min(m);
            let sums_part = sums_parts.as_mut().and_then(Iterator::next);
            let totals_part = totals_parts.as_mut().and_then(Iterator::next);
            (rows, c_part, sums_part, totals_part)
        })
        .collect();
    crate::parallel::try_for_each_part(parts, |(rows, c_part, sums_part, totals_part)| {
        run_rows(rows, c_part, sums_part, totals_part)
    })
}

/// Multiplies of at least this many multiply-adds (about 10 µs on a core) split their rows
/// between threads. At 4M, the VAE's 128×40×400 and 128×400×20 stayed on one core; at 1M
/// its CPU epoch went from about 39k to 43k samples/s (a split costs microseconds on the
/// spinning pool of parallel.rs).
const PARALLEL_MACS: usize = 1 << 20;

/// Rows a thread gets at least: every thread packs the whole of op(B), so a thread of a few
/// rows would spend more on packing than on its tiles (a batch of 128 on 64 cores: 2 rows
/// a thread, B packed 64 times). Arithmetic, not measured: this machine has 2 cores.
const MIN_ROWS_PER_THREAD: usize = 16;

/// Threads for an (m, n, k) multiply: one below [`PARALLEL_MACS`], else up to the cores this
/// process may run on, at most one per [`MIN_ROWS_PER_THREAD`] rows.
fn threads_for_multiply(m: usize, n: usize, k: usize) -> usize {
    if m.saturating_mul(n).saturating_mul(k) < PARALLEL_MACS {
        return 1;
    }
    crate::parallel::threads_for(m, MIN_ROWS_PER_THREAD)
}

/// What the store adds to the product before f' (the shaders' ADD_ADDEND or L1_GRAD), (m, n).
#[derive(Clone, Copy)]
enum Added<'a, T> {
    Nothing,
    Addend(&'a [T]),
    /// The L1 penalty's gradient scale · sign(code).
    L1 {
        scale: T,
        code: &'a [T],
    },
}

/// The store's steps in the shaders' order, over one row of the product (row `span` of the
/// (m, n) extras): + addend (or + the L1 gradient), · f'(saved), + bias.
fn store_steps<T: Float>(
    values: &mut [T],
    span: Range<usize>,
    added: Added<T>,
    saved: Option<(Activation, &[T])>,
    bias: Option<&[T]>,
) -> Result<()> {
    match added {
        Added::Nothing => {}
        Added::Addend(addend) => add_to(values, &addend[span.clone()]),
        Added::L1 { scale, code } => {
            crate::cpu::l1::l1_backward(values, &code[span.clone()], scale, true)?;
        }
    }
    if let Some((kind, saved)) = saved {
        for (value, &y) in values.iter_mut().zip(&saved[span]) {
            *value = activation_grad_at(kind, *value, y);
        }
    }
    if let Some(bias) = bias {
        add_to(values, bias);
    }
    Ok(())
}

/// values += addend, element by element.
fn add_to<T: Float>(values: &mut [T], addend: &[T]) {
    for (value, &x) in values.iter_mut().zip(addend) {
        *value = *value + x;
    }
}

/// Replaces a row of z = op(A)·op(B) (+ bias) by scale · dloss/dz against the target row and
/// returns the row's loss, summed from column 0 up (bce_forward_backward's and
/// mse_forward_backward's formulas).
fn store_loss<T: Float>(kind: StoreLoss, z: &mut [T], target: &[T], scale: T) -> T {
    let two = crate::cpu::lit::<T>(2.0);
    let mut sum = T::zero();
    for (z, &x) in z.iter_mut().zip(target) {
        let v = *z;
        match kind {
            StoreLoss::Bce => {
                sum = sum + crate::cpu::bce::bce_with_logits(v, x);
                *z = scale * (crate::cpu::activation::stable_sigmoid(v) - x);
            }
            StoreLoss::Mse => {
                sum = sum + (v - x) * (v - x);
                *z = scale * two * (v - x);
            }
        }
    }
    sum
}

/// v · f'(y) from f's output y, with the activation backward twins' formulas.
fn activation_grad_at<T: Float>(kind: Activation, v: T, y: T) -> T {
    match kind {
        Activation::Relu => {
            if y > T::zero() {
                v
            } else {
                T::zero()
            }
        }
        Activation::Sigmoid => v * y * (T::one() - y),
        Activation::Tanh => v * (T::one() - y * y),
    }
}

/// y = f(x), with the activation twins' formulas.
fn activate<T: Real>(activation: Activation, y: &mut [T], x: &[T]) -> Result<()> {
    match activation {
        Activation::Relu => crate::cpu::activation::relu_forward(y, x),
        Activation::Sigmoid => crate::cpu::activation::sigmoid_forward(y, x),
        Activation::Tanh => crate::cpu::activation::tanh_forward(y, x),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::bits;
    use crate::cpu::matmul_tiles::tests::triple_loop;
    use crate::cpu::matmul_tiles::TileForm;

    /// A multiply large enough to split its rows between threads (≥ PARALLEL_MACS), with an
    /// odd row count, gives the triple loop's bits in every row, and its row sums.
    #[test]
    fn a_threaded_multiply_gives_the_triple_loops_bits() {
        let (m, n, k) = (131, 97, 333);
        assert!(m * n * k >= PARALLEL_MACS);
        let value = |i: usize| ((i * 7919 % 263) as f32 - 131.0) / 97.0;
        let a: Vec<f32> = (0..m * k).map(value).collect();
        let b: Vec<f32> = (0..k * n).map(|i| value(i + 5)).collect();
        let shape = MatmulShape {
            trans_b: true,
            row_sums: true,
            ..MatmulShape::new(m, n, k)
        };
        let mut c = vec![f32::NAN; m * n];
        let mut sums = vec![f32::NAN; m];
        let extras = MatmulExtras {
            row_sums: Some(&mut sums),
            ..Default::default()
        };
        matmul_with_extras(&mut c, &a, &b, None, extras, &shape).unwrap();
        let operands = Operands {
            a: &a,
            b: &b,
            trans_a: false,
            trans_b: true,
            m,
            n,
            k,
        };
        assert_eq!(
            bits(&c),
            bits(&triple_loop(&operands, TileForm::detect().fuses()))
        );
        let expected: Vec<f32> = (0..m)
            .map(|row| a[row * k..(row + 1) * k].iter().fold(0.0, |s, &x| s + x))
            .collect();
        assert_eq!(bits(&sums), bits(&expected));
    }

    /// The store's steps run in the shaders' order, element by element: product, + addend,
    /// · f'(saved), + bias, + C, then the activation; the same bits as that order computed
    /// one element at a time.
    #[test]
    fn the_store_keeps_the_shaders_order() {
        let (m, n, k) = (6, 53, 9);
        let value = |i: usize| ((i * 7919 % 263) as f32 - 131.0) / 97.0;
        let a: Vec<f32> = (0..m * k).map(value).collect();
        let b: Vec<f32> = (0..k * n).map(|i| value(i + 5)).collect();
        let addend: Vec<f32> = (0..m * n).map(|i| value(i + 7) * 0.3).collect();
        let saved: Vec<f32> = (0..m * n).map(|i| value(i + 9).tanh()).collect();
        let bias: Vec<f32> = (0..n).map(|i| value(i + 11)).collect();
        let before: Vec<f32> = (0..m * n).map(|i| value(i + 13) * 0.7).collect();
        let shape = MatmulShape {
            accumulate: true,
            addend: true,
            activation_grad: Some(Activation::Tanh),
            activation: Some(Activation::Sigmoid),
            ..MatmulShape::new(m, n, k)
        };
        let mut c = before.clone();
        let extras = MatmulExtras {
            saved: Some(&saved),
            addend: Some(&addend),
            ..Default::default()
        };
        matmul_with_extras(&mut c, &a, &b, Some(&bias), extras, &shape).unwrap();
        let operands = Operands {
            a: &a,
            b: &b,
            trans_a: false,
            trans_b: false,
            m,
            n,
            k,
        };
        let products = triple_loop(&operands, TileForm::detect().fuses());
        for i in 0..m * n {
            let stored =
                (products[i] + addend[i]) * (1.0 - saved[i] * saved[i]) + bias[i % n] + before[i];
            let mut expected = [0.0f32];
            crate::cpu::activation::sigmoid_forward(&mut expected, &[stored]).unwrap();
            assert_eq!(c[i].to_bits(), expected[0].to_bits(), "element {i}");
        }
    }
}
