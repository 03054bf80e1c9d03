//! Every backward against central finite differences, in f64 on the CPU twins.
//!
//! For each op f, a random weighting w turns the output into a scalar L = Σ w ⊙ f(x); the
//! backward fed dy = w must give dL/dx. Central differences with h = 1e-6 in f64 have
//! truncation error ~h²·f''' ≈ 1e-12 and rounding error ~1e-16·|L|/h ≈ 1e-9, so analytic
//! and numeric gradients must agree to 1e-6 absolute plus 1e-6 relative.

mod common;

use latent::cpu::matmul::{MatmulExtras, MatmulShape, StoreLoss};
use latent::cpu::reparameterize::NoiseKey;
use latent::cpu::{
    activation, bce, concat, kl, kl_sparsity, l1, log_mean_exp, log_weight, matmul, mse, reduce,
    reparameterize, repeat_rows,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const H: f64 = 1e-6;

fn random(rng: &mut StdRng, n: usize, lo: f64, hi: f64) -> Vec<f64> {
    (0..n).map(|_| rng.random_range(lo..hi)).collect()
}

fn weighted_sum(w: &[f64], y: &[f64]) -> f64 {
    w.iter().zip(y).map(|(a, b)| a * b).sum()
}

/// Compares `analytic` with central differences of `loss` at up to 40 coordinates of `x`.
fn assert_gradient(
    name: &str,
    x: &[f64],
    analytic: &[f64],
    loss: &dyn Fn(&[f64]) -> f64,
    seed: u64,
) {
    assert_eq!(x.len(), analytic.len(), "{name}: gradient length");
    let step = (x.len() / 40).max(1);
    for i in (0..x.len()).step_by(step) {
        let mut plus = x.to_vec();
        let mut minus = x.to_vec();
        plus[i] += H;
        minus[i] -= H;
        let numeric = (loss(&plus) - loss(&minus)) / (2.0 * H);
        let error = (numeric - analytic[i]).abs();
        assert!(
            error <= 1e-6 + 1e-6 * numeric.abs(),
            "{name}[{i}]: analytic {} numeric {numeric} (LATENT_TEST_SEED={seed})",
            analytic[i]
        );
    }
}

fn rng() -> (StdRng, u64) {
    let seed = common::seed();
    (StdRng::seed_from_u64(seed), seed)
}

#[test]
fn matmul_backward_matches_finite_differences() {
    let (mut rng, seed) = rng();
    let (m, k, n) = (5, 7, 3);
    let a = random(&mut rng, m * k, -1.0, 1.0);
    let b = random(&mut rng, k * n, -1.0, 1.0);
    let bias = random(&mut rng, n, -1.0, 1.0);
    let w = random(&mut rng, m * n, -1.0, 1.0);
    let forward = |a: &[f64], b: &[f64], bias: &[f64]| {
        let mut c = vec![0.0; m * n];
        matmul::matmul(&mut c, a, b, Some(bias), &MatmulShape::new(m, n, k)).unwrap();
        weighted_sum(&w, &c)
    };
    // dA = dC·Bᵀ: (m, n)·(n, k) with B stored (k, n) used transposed.
    let mut da = vec![0.0; m * k];
    matmul::matmul(
        &mut da,
        &w,
        &b,
        None,
        &MatmulShape {
            trans_b: true,
            ..MatmulShape::new(m, k, n)
        },
    )
    .unwrap();
    // dB = Aᵀ·dC: (k, m)·(m, n) with A stored (m, k) used transposed.
    let mut db = vec![0.0; k * n];
    matmul::matmul(
        &mut db,
        &a,
        &w,
        None,
        &MatmulShape {
            trans_a: true,
            ..MatmulShape::new(k, n, m)
        },
    )
    .unwrap();
    // dbias = Σ_rows dC: the column sum.
    let mut dbias = vec![0.0; n];
    reduce::sum_cols(&mut dbias, &w, m, n).unwrap();
    assert_gradient("matmul dA", &a, &da, &|x| forward(x, &b, &bias), seed);
    assert_gradient("matmul dB", &b, &db, &|x| forward(&a, x, &bias), seed);
    assert_gradient("matmul dbias", &bias, &dbias, &|x| forward(&a, &b, x), seed);
}

/// The loss in the matmul's store: with z = A·Bᵀ + bias, C = scale · dloss/dz and the loss
/// added to totals starting at zero, L = scale · Σ totals has dL/dbias = Σ_rows C and
/// dL/dA = C·B.
#[test]
fn matmul_loss_store_gradient_matches_finite_differences() {
    let (mut rng, seed) = rng();
    let (m, k, n) = (4, 6, 5);
    let a = random(&mut rng, m * k, -1.0, 1.0);
    let b = random(&mut rng, n * k, -1.0, 1.0);
    let bias = random(&mut rng, n, -1.0, 1.0);
    let target = random(&mut rng, m * n, 0.0, 1.0);
    let scale = 0.3;
    for loss in [StoreLoss::Bce, StoreLoss::Mse] {
        let shape = MatmulShape {
            trans_b: true,
            loss: Some(loss),
            ..MatmulShape::new(m, n, k)
        };
        // (C, scale · Σ totals)
        let run = |a: &[f64], bias: &[f64]| {
            let mut c = vec![0.0; m * n];
            let mut totals = vec![0.0; m * n];
            let extras = MatmulExtras {
                target: Some(&target),
                loss_totals: Some(&mut totals),
                loss_scale: scale,
                ..Default::default()
            };
            matmul::matmul_with_extras(&mut c, a, &b, Some(bias), extras, &shape).unwrap();
            (c, scale * totals.iter().sum::<f64>())
        };
        let (c, _) = run(&a, &bias);
        let mut dbias = vec![0.0; n];
        reduce::sum_cols(&mut dbias, &c, m, n).unwrap();
        // dA = dz·B: (m, n)·(n, k), B stored (n, k).
        let mut da = vec![0.0; m * k];
        matmul::matmul(&mut da, &c, &b, None, &MatmulShape::new(m, k, n)).unwrap();
        let name = format!("matmul {loss:?} loss store");
        assert_gradient(
            &format!("{name} dbias"),
            &bias,
            &dbias,
            &|x| run(&a, x).1,
            seed,
        );
        assert_gradient(&format!("{name} dA"), &a, &da, &|x| run(x, &bias).1, seed);
    }
}

/// The reparameterization's backward in the matmul's store: C = dstats (+)= [dz | dz·ε·½σ]
/// for dz = A·B (the VAE's dz = dy·W), or its first l columns (a conditional VAE's, the
/// label's dropped), σ = e^(½·logvar). L = Σ w ⊙ C has dL/ddz = w_μ + w_logvar·ε·½σ (each
/// row's halves; 0 for a dropped column) and dL/dA = (dL/ddz)·Bᵀ; written and accumulating
/// (the start adds a constant).
#[test]
fn matmul_reparam_grad_store_gradient_matches_finite_differences() {
    let (mut rng, seed) = rng();
    let (m, k, n) = (4, 6, 5);
    let a = random(&mut rng, m * k, -1.0, 1.0);
    let b = random(&mut rng, k * n, -1.0, 1.0);
    for l in [n, 3] {
        check_reparam_grad_store(&mut rng, seed, (&a, &b), (m, k, n), l);
    }
}

/// matmul_reparam_grad_store_gradient_matches_finite_differences with dz the first l of the
/// product's n columns.
fn check_reparam_grad_store(
    rng: &mut StdRng,
    seed: u64,
    (a, b): (&[f64], &[f64]),
    (m, k, n): (usize, usize, usize),
    l: usize,
) {
    let eps = random(rng, m * l, -2.0, 2.0);
    let stats = random_stats(rng, m, l, (-2.0, 2.0), (-3.0, 1.0));
    let w = random(rng, m * 2 * l, -1.0, 1.0);
    let start = random(rng, m * 2 * l, -1.0, 1.0);
    // dL/ddz, from the formulas, not from the kernel.
    let mut ddz = vec![0.0; m * n];
    for row in 0..m {
        for col in 0..l {
            let (mu, lv) = (row * 2 * l + col, row * 2 * l + l + col);
            let sigma = (0.5 * stats[lv]).exp();
            ddz[row * n + col] = w[mu] + w[lv] * eps[row * l + col] * 0.5 * sigma;
        }
    }
    // dA = ddz·Bᵀ: (m, n)·(n, k), B stored (k, n).
    let mut da = vec![0.0; m * k];
    let bt = MatmulShape {
        trans_b: true,
        ..MatmulShape::new(m, k, n)
    };
    matmul::matmul(&mut da, &ddz, b, None, &bt).unwrap();
    for accumulate in [false, true] {
        let shape = MatmulShape {
            reparam_grad: Some(l),
            accumulate,
            ..MatmulShape::new(m, n, k)
        };
        let forward = |a: &[f64]| {
            let mut c = if accumulate {
                start.clone()
            } else {
                vec![0.0; m * 2 * l]
            };
            let extras = MatmulExtras {
                eps: Some(&eps),
                stats: Some(&stats),
                ..Default::default()
            };
            matmul::matmul_with_extras(&mut c, a, b, None, extras, &shape).unwrap();
            weighted_sum(&w, &c)
        };
        let name = format!("matmul reparam_grad store (l {l}, accumulate {accumulate}) dA");
        assert_gradient(&name, a, &da, &forward, seed);
    }
}

type Forward = fn(&mut [f64], &[f64]) -> latent::Result<()>;
type Backward = fn(&mut [f64], &[f64], &[f64]) -> latent::Result<()>;

fn check_activation(name: &str, forward: Forward, backward: Backward) {
    let (mut rng, seed) = rng();
    let n = 60;
    // Away from ReLU's kink at 0, where the derivative does not exist.
    let x: Vec<f64> = random(&mut rng, n, -4.0, 4.0)
        .into_iter()
        .map(|v| if v.abs() < 0.01 { 0.5 } else { v })
        .collect();
    let w = random(&mut rng, n, -1.0, 1.0);
    let mut y = vec![0.0; n];
    forward(&mut y, &x).unwrap();
    let mut dx = vec![0.0; n];
    backward(&mut dx, &y, &w).unwrap();
    let loss = |x: &[f64]| {
        let mut y = vec![0.0; n];
        forward(&mut y, x).unwrap();
        weighted_sum(&w, &y)
    };
    assert_gradient(name, &x, &dx, &loss, seed);
}

#[test]
fn relu_backward_matches_finite_differences() {
    check_activation("relu", activation::relu_forward, activation::relu_backward);
}

#[test]
fn sigmoid_backward_matches_finite_differences() {
    check_activation(
        "sigmoid",
        activation::sigmoid_forward,
        activation::sigmoid_backward,
    );
}

#[test]
fn tanh_backward_matches_finite_differences() {
    check_activation("tanh", activation::tanh_forward, activation::tanh_backward);
}

#[test]
fn mse_backward_matches_finite_differences() {
    let (mut rng, seed) = rng();
    let (rows, cols) = (4, 9);
    let x = random(&mut rng, rows * cols, 0.0, 1.0);
    let target = random(&mut rng, rows * cols, 0.0, 1.0);
    let scale = 1.0 / (rows * cols) as f64;
    let loss = |x: &[f64]| {
        let mut per_row = vec![0.0; rows];
        mse::mse_forward(&mut per_row, x, &target, rows, cols).unwrap();
        scale * per_row.iter().sum::<f64>()
    };
    let mut dx = vec![0.0; rows * cols];
    mse::mse_backward(&mut dx, &x, &target, scale).unwrap();
    assert_gradient("mse", &x, &dx, &loss, seed);
}

#[test]
fn bce_backward_matches_finite_differences() {
    let (mut rng, seed) = rng();
    let (rows, cols) = (3, 11);
    let logits = random(&mut rng, rows * cols, -20.0, 20.0);
    let target = random(&mut rng, rows * cols, 0.0, 1.0);
    let scale = 1.0 / rows as f64;
    let loss = |z: &[f64]| {
        let mut per_row = vec![0.0; rows];
        bce::bce_forward(&mut per_row, z, &target, rows, cols).unwrap();
        scale * per_row.iter().sum::<f64>()
    };
    let mut dz = vec![0.0; rows * cols];
    bce::bce_backward(&mut dz, &logits, &target, scale).unwrap();
    assert_gradient("bce", &logits, &dz, &loss, seed);
}

/// stats (rows, 2·cols): each row μ (cols values in `mu`) then logvar (cols values in
/// `logvar`), the layout of a VAE's encoder output.
fn random_stats(
    rng: &mut StdRng,
    rows: usize,
    cols: usize,
    mu: (f64, f64),
    logvar: (f64, f64),
) -> Vec<f64> {
    let mut stats = Vec::with_capacity(rows * 2 * cols);
    for _ in 0..rows {
        stats.extend(random(rng, cols, mu.0, mu.1));
        stats.extend(random(rng, cols, logvar.0, logvar.1));
    }
    stats
}

#[test]
fn kl_backward_matches_finite_differences() {
    let (mut rng, seed) = rng();
    let (rows, cols) = (3, 5);
    let stats = random_stats(&mut rng, rows, cols, (-2.0, 2.0), (-3.0, 3.0));
    let scale = 0.7;
    let loss = |stats: &[f64]| {
        let mut per_row = vec![0.0; rows];
        kl::kl_forward(&mut per_row, stats, rows, cols).unwrap();
        scale * per_row.iter().sum::<f64>()
    };
    let mut dstats = vec![0.0; rows * 2 * cols];
    kl::kl_backward(&mut dstats, &stats, rows, cols, scale, false).unwrap();
    // 30 coordinates: every μ and every logvar.
    assert_gradient("kl dstats", &stats, &dstats, &loss, seed);
}

#[test]
fn l1_backward_matches_finite_differences() {
    let (mut rng, seed) = rng();
    let (rows, cols) = (4, 7);
    // Away from 0, where |x| has no derivative.
    let x: Vec<f64> = random(&mut rng, rows * cols, 0.05, 1.0)
        .into_iter()
        .enumerate()
        .map(|(i, v)| if i % 3 == 0 { -v } else { v })
        .collect();
    let scale = 0.3;
    let loss = |x: &[f64]| {
        let mut per_row = vec![0.0; rows];
        l1::l1_forward(&mut per_row, x, rows, cols).unwrap();
        scale * per_row.iter().sum::<f64>()
    };
    let mut dx = vec![0.0; rows * cols];
    l1::l1_backward(&mut dx, &x, scale, false).unwrap();
    assert_gradient("l1", &x, &dx, &loss, seed);
}

#[test]
fn kl_sparsity_backward_matches_finite_differences() {
    let (mut rng, seed) = rng();
    let (rows, cols, rho) = (5, 6, 0.05);
    let x = random(&mut rng, rows * cols, 0.02, 0.6);
    let scale = 0.4;
    let loss = |x: &[f64]| {
        let (mut per_row, mut rho_hat) = (vec![0.0; rows], vec![0.0; cols]);
        kl_sparsity::kl_sparsity_forward(&mut per_row, &mut rho_hat, x, rows, cols, rho).unwrap();
        scale * per_row.iter().sum::<f64>()
    };
    let (mut per_row, mut rho_hat) = (vec![0.0; rows], vec![0.0; cols]);
    kl_sparsity::kl_sparsity_forward(&mut per_row, &mut rho_hat, &x, rows, cols, rho).unwrap();
    let mut dx = vec![0.0; rows * cols];
    kl_sparsity::kl_sparsity_backward(&mut dx, &rho_hat, rows, rho, scale, false).unwrap();
    assert_gradient("kl_sparsity", &x, &dx, &loss, seed);
}

#[test]
fn concat_backward_matches_finite_differences() {
    let (mut rng, seed) = rng();
    let (rows, cols_a, cols_b) = (3, 4, 2);
    let a = random(&mut rng, rows * cols_a, -1.0, 1.0);
    let b = random(&mut rng, rows * cols_b, -1.0, 1.0);
    let w = random(&mut rng, rows * (cols_a + cols_b), -1.0, 1.0);
    let loss = |a: &[f64], b: &[f64]| {
        let mut y = vec![0.0; rows * (cols_a + cols_b)];
        concat::concat_cols(&mut y, a, b, rows, cols_a, cols_b).unwrap();
        weighted_sum(&w, &y)
    };
    let (mut da, mut db) = (vec![0.0; rows * cols_a], vec![0.0; rows * cols_b]);
    concat::slice_cols(&mut da, &w, rows, cols_a + cols_b, 0, false).unwrap();
    concat::slice_cols(&mut db, &w, rows, cols_a + cols_b, cols_a, false).unwrap();
    assert_gradient("concat a", &a, &da, &|x| loss(x, &b), seed);
    assert_gradient("concat b", &b, &db, &|x| loss(&a, x), seed);
}

#[test]
fn repeat_rows_backward_matches_finite_differences() {
    let (mut rng, seed) = rng();
    let (rows, cols, k) = (3, 4, 5);
    let x = random(&mut rng, rows * cols, -1.0, 1.0);
    let w = random(&mut rng, rows * k * cols, -1.0, 1.0);
    let loss = |x: &[f64]| {
        let mut y = vec![0.0; rows * k * cols];
        repeat_rows::repeat_rows(&mut y, x, rows, cols, k).unwrap();
        weighted_sum(&w, &y)
    };
    let mut dx = vec![0.0; rows * cols];
    repeat_rows::sum_row_groups(&mut dx, &w, rows, cols, k, false).unwrap();
    assert_gradient("repeat_rows", &x, &dx, &loss, seed);
}

#[test]
fn importance_weight_backwards_match_finite_differences() {
    let (mut rng, seed) = rng();
    let (groups, k, cols, recon_weight, scale) = (2, 3, 4, 0.5, 0.7);
    let rows = groups * k;
    let recon = random(&mut rng, rows, 1.0, 4.0);
    let z = random(&mut rng, rows * cols, -2.0, 2.0);
    let eps = random(&mut rng, rows * cols, -2.0, 2.0);
    let stats = random_stats(&mut rng, rows, cols, (-2.0, 2.0), (-1.0, 1.0));
    // L = scale · Σ_rows −log-mean-exp(log w) of each row's group.
    let loss = |recon: &[f64], z: &[f64], stats: &[f64]| {
        let mut logw = vec![0.0; rows];
        log_weight::log_weight(&mut logw, recon, z, &eps, stats, cols, recon_weight as f32)
            .unwrap();
        let mut out = vec![0.0; rows];
        log_mean_exp::neg_log_mean_exp(&mut out, &logw, k).unwrap();
        scale * out.iter().sum::<f64>()
    };
    let mut logw = vec![0.0; rows];
    log_weight::log_weight(
        &mut logw,
        &recon,
        &z,
        &eps,
        &stats,
        cols,
        recon_weight as f32,
    )
    .unwrap();
    let mut dlogw = vec![0.0; rows];
    log_mean_exp::neg_log_mean_exp_backward(&mut dlogw, &logw, k, scale).unwrap();
    // dstats starts as NaN: written mode must write the μ half (with zeros) too.
    let (mut dz, mut dstats) = (vec![0.0; rows * cols], vec![f64::NAN; rows * 2 * cols]);
    log_weight::log_weight_backward(&mut dz, &mut dstats, &dlogw, &z, false, false).unwrap();
    // The reconstruction's share, which the loss kernels' backward_rows take.
    let drecon: Vec<f64> = dlogw.iter().map(|d| -recon_weight * d).collect();
    assert_gradient("iw dz", &z, &dz, &|x| loss(&recon, x, &stats), seed);
    // 48 coordinates, all checked: the μ half's gradient is 0 (log w reads logvar only).
    assert_gradient("iw dstats", &stats, &dstats, &|x| loss(&recon, &z, x), seed);
    assert_gradient("iw drecon", &recon, &drecon, &|x| loss(x, &z, &stats), seed);
}

#[test]
fn loss_backwards_with_row_gradients_match_finite_differences() {
    let (mut rng, seed) = rng();
    let (rows, cols, scale, factor) = (3, 5, 0.25, -1.5);
    let a = random(&mut rng, rows * cols, -3.0, 3.0);
    let target = random(&mut rng, rows * cols, 0.0, 1.0);
    let row_grad = random(&mut rng, rows, -1.0, 1.0);
    for is_bce in [true, false] {
        // L = Σ_r (scale + factor · row_grad[r]) · loss[r].
        let loss = |a: &[f64]| {
            let mut per_row = vec![0.0; rows];
            if is_bce {
                bce::bce_forward(&mut per_row, a, &target, rows, cols).unwrap();
            } else {
                mse::mse_forward(&mut per_row, a, &target, rows, cols).unwrap();
            }
            (0..rows)
                .map(|r| (scale + factor * row_grad[r]) * per_row[r])
                .sum::<f64>()
        };
        let mut da = vec![0.0; rows * cols];
        if is_bce {
            bce::bce_backward_rows(&mut da, &a, &target, &row_grad, scale, factor).unwrap();
        } else {
            mse::mse_backward_rows(&mut da, &a, &target, &row_grad, scale, factor).unwrap();
        }
        let name = if is_bce { "bce rows" } else { "mse rows" };
        assert_gradient(name, &a, &da, &loss, seed);
    }
}

#[test]
fn reparameterize_backward_matches_finite_differences() {
    let (mut rng, seed) = rng();
    // 21 elements: Philox groups of four straddle rows of 7, the last group is cut short.
    let (rows, cols) = (3, 7);
    let n = rows * cols;
    let stats = random_stats(&mut rng, rows, cols, (-2.0, 2.0), (-3.0, 3.0));
    let w = random(&mut rng, n, -1.0, 1.0);
    // The noise depends only on the key, so z is a deterministic function of stats.
    let key = NoiseKey {
        seed,
        step: 3,
        stream: 0,
    };
    let forward = |stats: &[f64]| {
        let (mut z, mut eps) = (vec![0.0; n], vec![0.0; n]);
        reparameterize::reparameterize_forward(&mut z, &mut eps, stats, rows, cols, key).unwrap();
        (weighted_sum(&w, &z), eps)
    };
    let (_, eps) = forward(&stats);
    let mut dstats = vec![0.0; 2 * n];
    reparameterize::reparameterize_backward(&mut dstats, &eps, &stats, &w, rows, cols, false)
        .unwrap();
    // 42 coordinates: every μ and every logvar.
    assert_gradient(
        "reparameterize dstats",
        &stats,
        &dstats,
        &|x| forward(x).0,
        seed,
    );
}

#[test]
fn accumulating_backwards_add_to_their_outputs() {
    let (mut rng, _) = rng();
    let (rows, cols) = (2, 4);
    let n = rows * cols;
    let stats = random_stats(&mut rng, rows, cols, (-1.0, 1.0), (-1.0, 1.0));
    let start = random(&mut rng, 2 * n, -1.0, 1.0);
    let close = |a: f64, b: f64| (a - b).abs() < 1e-12;

    let mut fresh = vec![0.0; 2 * n];
    kl::kl_backward(&mut fresh, &stats, rows, cols, 0.5, false).unwrap();
    let mut acc = start.clone();
    kl::kl_backward(&mut acc, &stats, rows, cols, 0.5, true).unwrap();
    for j in 0..2 * n {
        assert!(close(acc[j], start[j] + fresh[j]), "kl dstats[{j}]");
    }

    let (eps, dz) = (
        random(&mut rng, n, -1.0, 1.0),
        random(&mut rng, n, -1.0, 1.0),
    );
    let mut fresh = vec![0.0; 2 * n];
    reparameterize::reparameterize_backward(&mut fresh, &eps, &stats, &dz, rows, cols, false)
        .unwrap();
    let mut acc = start.clone();
    reparameterize::reparameterize_backward(&mut acc, &eps, &stats, &dz, rows, cols, true).unwrap();
    for j in 0..2 * n {
        assert!(
            close(acc[j], start[j] + fresh[j]),
            "reparameterize dstats[{j}]"
        );
    }

    // log_weight_backward: written, the μ half is zeros; added, the μ half is left as it was.
    let (dlogw, z) = (
        random(&mut rng, rows, -1.0, 1.0),
        random(&mut rng, n, -1.0, 1.0),
    );
    let (mut dz_fresh, mut fresh) = (vec![0.0; n], vec![f64::NAN; 2 * n]);
    log_weight::log_weight_backward(&mut dz_fresh, &mut fresh, &dlogw, &z, false, false).unwrap();
    let (mut dz_acc, mut acc) = (start[..n].to_vec(), start.clone());
    log_weight::log_weight_backward(&mut dz_acc, &mut acc, &dlogw, &z, true, true).unwrap();
    for j in 0..2 * n {
        let in_mu_half = j % (2 * cols) < cols;
        if in_mu_half {
            assert_eq!(fresh[j], 0.0, "log_weight dstats[{j}] written");
        }
        assert!(close(acc[j], start[j] + fresh[j]), "log_weight dstats[{j}]");
    }
    for i in 0..n {
        assert!(
            close(dz_acc[i], start[i] + dz_fresh[i]),
            "log_weight dz[{i}]"
        );
    }
}
