//! CPU twin of shaders/matmul_grouped_tn.wgsl: the weight and bias gradients of several
//! linear layers, each written at its offsets in one flat gradient buffer. For each problem:
//! dweight (m, n) = dyᵀ · x with dy stored (k, m) and x stored (k, n), and dbias (m) = the
//! column sums of dy (the row sums of dyᵀ). The GPU does them in one dispatch; here they are
//! the TN matmul twin, one problem after another. [`matmul_grouped_tn_adam`] is the fused
//! form's twin: those gradients fed to Adam (cpu/adam.rs) at the same offsets of the flat
//! parameter buffer, the rest untouched.

use crate::cpu::adam::{adam_step, AdamConfig};
use crate::cpu::matmul::{matmul_with_extras, MatmulExtras, MatmulShape};
use crate::cpu::{check_lens, Real};
use crate::error::{shape_error, Result};

/// One layer's gradients: its dy (k, m) and x (k, n), and where dweight (m·n elements) and
/// dbias (m) start in the gradient buffer.
#[derive(Clone, Copy, Debug)]
pub struct GroupedProblem<'a, T> {
    pub m: usize,
    pub n: usize,
    pub dy: &'a [T],
    pub x: &'a [T],
    pub dweight: usize,
    pub dbias: usize,
}

/// Writes every problem's dweight and dbias into `grads`; the rest of `grads` is untouched.
pub fn matmul_grouped_tn<T: Real>(
    grads: &mut [T],
    k: usize,
    problems: &[GroupedProblem<T>],
) -> Result<()> {
    for (g, p) in problems.iter().enumerate() {
        check_lens(
            "matmul_grouped_tn",
            &[("dy", p.dy.len(), k * p.m), ("x", p.x.len(), k * p.n)],
        )?;
        let fits =
            |start: usize, len: usize| start.checked_add(len).is_some_and(|end| end <= grads.len());
        if !fits(p.dweight, p.m * p.n) || !fits(p.dbias, p.m) {
            return Err(shape_error(
                "matmul_grouped_tn",
                format!(
                    "problem {g}'s dweight at {} ({} elements) or dbias at {} ({}) runs past the \
                     gradient buffer's {} elements",
                    p.dweight,
                    p.m * p.n,
                    p.dbias,
                    p.m,
                    grads.len()
                ),
            ));
        }
        let shape = MatmulShape {
            trans_a: true,
            row_sums: true,
            ..MatmulShape::new(p.m, p.n, k)
        };
        let mut sums = vec![T::zero(); p.m];
        let extras = MatmulExtras {
            row_sums: Some(&mut sums),
            ..MatmulExtras::default()
        };
        matmul_with_extras(
            &mut grads[p.dweight..p.dweight + p.m * p.n],
            p.dy,
            p.x,
            None,
            extras,
            &shape,
        )?;
        grads[p.dbias..p.dbias + p.m].copy_from_slice(&sums);
    }
    Ok(())
}

/// Adam at step `step` on each problem's dweight and dbias ranges of `param` (and of the
/// moments `m` and `v`, the same length), with the gradients [`matmul_grouped_tn`] computes.
pub fn matmul_grouped_tn_adam<T: Real>(
    param: &mut [T],
    m: &mut [T],
    v: &mut [T],
    k: usize,
    problems: &[GroupedProblem<T>],
    step: u32,
    config: &AdamConfig,
) -> Result<()> {
    let n = param.len();
    check_lens(
        "matmul_grouped_tn_adam",
        &[("m", m.len(), n), ("v", v.len(), n)],
    )?;
    let mut grads = vec![T::zero(); n];
    matmul_grouped_tn(&mut grads, k, problems)?;
    for p in problems {
        for (start, len) in [(p.dweight, p.m * p.n), (p.dbias, p.m)] {
            let range = start..start + len;
            adam_step(
                &mut param[range.clone()],
                &mut m[range.clone()],
                &mut v[range.clone()],
                &grads[range],
                step,
                config,
            )?;
        }
    }
    Ok(())
}
