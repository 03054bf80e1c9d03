//! CPU-only checks of the twins and the comparison logic: Philox known answers, the noise's
//! statistics, bad input rejected with an error naming the op, and the comparison catching
//! poisoned or wrong values. No GPU needed.

mod common;

use latent::cpu::matmul::{matmul, matmul_with_extras, MatmulExtras, MatmulShape, StoreLoss};
use latent::cpu::philox::{normals_for_group, philox4x32_10, philox_fill};
use latent::cpu::{activation, adam, bce, kl, mse, reduce, reparameterize, sgd};
use latent::gpu::pack_bytes;
use latent::kernels::activation::Activation;
use latent::validate::{abs_rel, compare, PHILOX_KNOWN_ANSWERS};
use latent::Error;

#[test]
fn philox_cpu_matches_random123_known_answers() {
    for (counter, key, answer) in PHILOX_KNOWN_ANSWERS {
        assert_eq!(
            philox4x32_10(counter, key),
            answer,
            "counter {counter:08x?} key {key:08x?}"
        );
    }
}

#[test]
fn philox_fill_advances_the_first_counter_word() {
    let mut words = [0u32; 10];
    philox_fill(&mut words, [5, 1, 2, 3], [9, 8]).unwrap();
    assert_eq!(words[..4], philox4x32_10([5, 1, 2, 3], [9, 8]));
    assert_eq!(words[4..8], philox4x32_10([6, 1, 2, 3], [9, 8]));
    assert_eq!(words[8..], philox4x32_10([7, 1, 2, 3], [9, 8])[..2]);
}

#[test]
fn box_muller_normals_have_mean_zero_and_variance_one() {
    let seed = common::seed();
    let groups = 25_000u32;
    let normals: Vec<f64> = (0..groups)
        .flat_map(|g| normals_for_group(seed, 1, 0, g))
        .collect();
    let n = normals.len() as f64;
    let mean = normals.iter().sum::<f64>() / n;
    let variance = normals.iter().map(|z| (z - mean).powi(2)).sum::<f64>() / n;
    // 100,000 draws: the mean's standard error is 0.003 and the variance's 0.0045; 5σ bounds.
    assert!(mean.abs() < 0.016, "mean {mean} (LATENT_TEST_SEED={seed})");
    assert!(
        (variance - 1.0).abs() < 0.023,
        "variance {variance} (LATENT_TEST_SEED={seed})"
    );
}

#[test]
fn noise_depends_on_seed_step_and_stream() {
    let base = normals_for_group(1, 1, 0, 0);
    assert_eq!(base, normals_for_group(1, 1, 0, 0));
    assert_ne!(base, normals_for_group(2, 1, 0, 0));
    assert_ne!(base, normals_for_group(1, 2, 0, 0));
    assert_ne!(base, normals_for_group(1, 1, 1, 0));
    assert_ne!(
        base,
        normals_for_group(1 << 40, 1, 0, 0),
        "the seed's high word counts"
    );
}

fn assert_shape_error(result: latent::Result<()>, op: &str, mentions: &str) {
    match result {
        Err(Error::Shape { op: got, message }) => {
            assert_eq!(got, op);
            assert!(
                message.contains(mentions),
                "{op}: message {message:?} lacks {mentions:?}"
            );
        }
        other => panic!("{op}: expected a shape error, got {other:?}"),
    }
}

#[test]
fn twins_reject_bad_shapes_with_the_op_named() {
    let mut c = vec![0.0f32; 6];
    let a = vec![0.0f32; 6];
    let b = vec![0.0f32; 5];
    assert_shape_error(
        matmul(&mut c, &a, &b, None, &MatmulShape::new(2, 3, 3)),
        "matmul",
        "B has 5 elements",
    );
    assert_shape_error(
        matmul(&mut c, &a, &b, None, &MatmulShape::new(0, 3, 3)),
        "matmul",
        "m is 0",
    );
    assert_shape_error(reduce::sum_rows(&mut c, &a, 2, 2), "sum_rows", "out has 6");
    let mut loss = vec![0.0f32; 2];
    assert_shape_error(
        mse::mse_forward(&mut loss, &a, &b, 2, 3),
        "mse_forward",
        "target has 5",
    );
    // stats (1, 2·3) holds μ | logvar; its gradient is one element short.
    let mut dstats = vec![0.0f32; 5];
    assert_shape_error(
        kl::kl_backward(&mut dstats, &a, 1, 3, 1.0, false),
        "kl_backward",
        "dstats has 5",
    );
}

/// The grouped twin writes each layer's dW = dyᵀ·x and db = Σ dy at its offsets, as the
/// matmul twin computes them one by one, leaves the rest alone, and refuses a part that
/// runs past the buffer.
#[test]
fn grouped_weight_gradients_twin_writes_each_layer_at_its_offsets() {
    use latent::cpu::matmul_grouped_tn::{matmul_grouped_tn, GroupedProblem};
    let k = 3;
    let (dy0, x0): (Vec<f32>, Vec<f32>) = (
        (0..k * 2).map(|i| i as f32 - 2.0).collect(),
        (0..k * 3).map(|i| 0.5 * i as f32).collect(),
    );
    let (dy1, x1): (Vec<f32>, Vec<f32>) = (
        (0..k).map(|i| 1.0 + i as f32).collect(),
        (0..k * 2).map(|i| 3.0 - i as f32).collect(),
    );
    let problems = [
        GroupedProblem {
            m: 2,
            n: 3,
            dy: &dy0,
            x: &x0,
            dweight: 10,
            dbias: 1,
        },
        GroupedProblem {
            m: 1,
            n: 2,
            dy: &dy1,
            x: &x1,
            dweight: 4,
            dbias: 20,
        },
    ];
    let mut grads = vec![-7.0f32; 24];
    matmul_grouped_tn(&mut grads, k, &problems).unwrap();
    let mut expected = vec![-7.0f32; 24];
    for p in &problems {
        let shape = MatmulShape {
            trans_a: true,
            ..MatmulShape::new(p.m, p.n, k)
        };
        let mut dw = vec![0.0f32; p.m * p.n];
        matmul(&mut dw, p.dy, p.x, None, &shape).unwrap();
        expected[p.dweight..p.dweight + p.m * p.n].copy_from_slice(&dw);
        for row in 0..p.m {
            expected[p.dbias + row] = (0..k).map(|b| p.dy[b * p.m + row]).sum();
        }
    }
    assert_eq!(grads, expected);
    // dW_0 = dy_0ᵀ·x_0 by hand at (1, 2): Σ_b dy0[b, 1]·x0[b, 2] = (−1)(1) + (1)(2.5) + (3)(4).
    assert_eq!(grads[10 + 3 + 2], 13.5);
    let past_end = [GroupedProblem {
        dweight: 20,
        ..problems[0]
    }];
    assert_shape_error(
        matmul_grouped_tn(&mut grads, k, &past_end),
        "matmul_grouped_tn",
        "runs past",
    );
}

#[test]
fn optimizers_reject_bad_hyperparameters() {
    let mut p = vec![0.0f32; 2];
    let (mut m, mut v) = (vec![0.0f32; 2], vec![0.0f32; 2]);
    let bad_lr = adam::AdamConfig {
        lr: 0.0,
        ..Default::default()
    };
    assert!(matches!(
        adam::adam_step(&mut p, &mut m, &mut v, &[1.0, 1.0], 1, &bad_lr),
        Err(Error::InvalidArgument(_))
    ));
    let bad_beta = adam::AdamConfig {
        beta2: 1.0,
        ..Default::default()
    };
    assert!(bad_beta.check().is_err());
    let nesterov_without_momentum = sgd::SgdConfig {
        momentum: 0.0,
        nesterov: true,
        ..Default::default()
    };
    assert!(sgd::sgd_step(&mut p, &mut m, &[1.0, 1.0], 1, &nesterov_without_momentum).is_err());
    assert!(
        adam::adam_step(&mut p, &mut m, &mut v, &[1.0, 1.0], 0, &Default::default()).is_err(),
        "step 0"
    );
}

#[test]
fn adam_first_step_moves_each_parameter_by_lr_against_the_gradient() {
    // With bias correction, Adam's first update is lr·sign(g) (for |g| ≫ ε), as in PyTorch.
    let mut p = vec![1.0f64, 1.0, 1.0];
    let (mut m, mut v) = (vec![0.0; 3], vec![0.0; 3]);
    adam::adam_step(
        &mut p,
        &mut m,
        &mut v,
        &[0.5, -2.0, 1e-3],
        1,
        &Default::default(),
    )
    .unwrap();
    for (got, want) in p.iter().zip([0.999, 1.001, 0.999]) {
        assert!((got - want).abs() < 1e-7, "{p:?}");
    }
}

#[test]
fn comparison_catches_poison_and_errors_beyond_the_bound() {
    let cpu = [1.0f32, 2.0, 3.0];
    let bound = abs_rel(1e-3, 0.0);
    assert_eq!(compare(&[1.0, 2.0005, 3.0], &cpu, &bound).failures, 0);
    let poisoned = compare(&[1.0, f32::NAN, 3.0], &cpu, &bound);
    assert_eq!(poisoned.failures, 1);
    assert_eq!(poisoned.first_failure.map(|f| f.0), Some(1));
    assert_eq!(compare(&[1.0, 2.0, 3.01], &cpu, &bound).failures, 1);
    assert_eq!(
        compare(&[1.0, 2.0], &cpu, &bound).failures,
        3,
        "a short output fails"
    );
}

#[test]
fn bytes_pack_little_endian_into_words() {
    assert_eq!(pack_bytes(&[1, 2, 3, 4, 5]), vec![0x0403_0201, 0x0000_0005]);
}

#[test]
fn log_mean_exp_known_answers_and_stability() {
    use latent::cpu::log_mean_exp::neg_log_mean_exp;
    // Weights 1 and 3: mean 2.
    let mut out = [0.0f64; 2];
    neg_log_mean_exp(&mut out, &[0.0, 3f64.ln()], 2).unwrap();
    assert!((out[0] + 2f64.ln()).abs() < 1e-15 && out[0] == out[1]);
    // Log weights of −1000 would underflow e^x; the shift by the max keeps them exact.
    let mut out = [0.0f32; 3];
    neg_log_mean_exp(&mut out, &[-1000.0, -1000.0, -1000.0], 3).unwrap();
    assert_eq!(out, [1000.0; 3]);
    // K = 1 is the log weight itself, negated.
    let mut out = [0.0f32; 2];
    neg_log_mean_exp(&mut out, &[-5.5, -7.25], 1).unwrap();
    assert_eq!(out, [5.5, 7.25]);
    assert!(neg_log_mean_exp(&mut [0.0f32; 3], &[0.0; 3], 2).is_err());
}

#[test]
fn corruption_changes_the_expected_share_of_values() {
    use latent::cpu::corrupt::{corrupt, Noise};
    use latent::cpu::reparameterize::NoiseKey;
    let n = 40_000;
    let clean = vec![0.5f32; n];
    let key = NoiseKey {
        seed: 7,
        step: 1,
        stream: 1,
    };
    let share = |noise: Noise, value: f32| {
        let mut y = vec![0.0f32; n];
        corrupt(&mut y, &clean, noise, key).unwrap();
        y.iter().filter(|&&v| v == value).count() as f64 / n as f64
    };
    // Binomial share with n = 40000: standard deviation ≤ 0.0025; allow 4 of them.
    assert!((share(Noise::Masking { p: 0.3 }, 0.0) - 0.3).abs() < 0.01);
    assert!((share(Noise::SaltAndPepper { p: 0.2 }, 0.0) - 0.1).abs() < 0.01);
    assert!((share(Noise::SaltAndPepper { p: 0.2 }, 1.0) - 0.1).abs() < 0.01);
    assert_eq!(share(Noise::Gaussian { sigma: 0.0 }, 0.5), 1.0);
    let mut y = vec![0.0f32; n];
    corrupt(&mut y, &clean, Noise::Gaussian { sigma: 0.5 }, key).unwrap();
    assert!(
        y.iter().all(|v| (0.0..=1.0).contains(v)),
        "clipped to [0, 1]"
    );
    let sd = (y.iter().map(|&v| f64::from(v - 0.5).powi(2)).sum::<f64>() / n as f64).sqrt();
    // N(0.5, 0.5²) clipped to [0, 1] has a standard deviation of about 0.34.
    assert!((sd - 0.34).abs() < 0.02, "sd {sd}");
    assert!(Noise::parse("gaussian:0.5").is_ok() && Noise::parse("sp:1.5").is_err());
}

/// The loss in the matmul's store equals the matmul (with bias) followed by
/// bce/mse_forward_backward, bit for bit: the gradient in C, each row's loss added to the
/// row's first slot of the (m, n) totals (the other slots untouched).
#[test]
fn matmul_loss_store_equals_the_matmul_then_the_loss_kernel() {
    let (m, n, k) = (3, 5, 4);
    let value = |i: usize, scale: f32| ((i * 37 % 11) as f32 - 5.0) * scale;
    let a: Vec<f32> = (0..m * k).map(|i| value(i, 0.3)).collect();
    let b: Vec<f32> = (0..n * k).map(|i| value(i + 3, 0.2)).collect();
    let bias: Vec<f32> = (0..n).map(|i| value(i + 7, 0.1)).collect();
    let target: Vec<f32> = (0..m * n).map(|i| (i * 7 % 10) as f32 / 10.0).collect();
    let start: Vec<f32> = (0..m * n).map(|i| i as f32 * 0.5).collect();
    let plain = MatmulShape {
        trans_b: true,
        ..MatmulShape::new(m, n, k)
    };
    let mut logits = vec![0.0f32; m * n];
    matmul(&mut logits, &a, &b, Some(&bias), &plain).unwrap();
    for loss in [StoreLoss::Bce, StoreLoss::Mse] {
        let scale = 0.25f32;
        let mut row_totals: Vec<f32> = (0..m).map(|r| start[r * n]).collect();
        let mut expected_grad = vec![0.0f32; m * n];
        match loss {
            StoreLoss::Bce => bce::bce_forward_backward(
                &mut row_totals,
                &mut expected_grad,
                &logits,
                &target,
                m,
                n,
                scale,
            ),
            StoreLoss::Mse => mse::mse_forward_backward(
                &mut row_totals,
                &mut expected_grad,
                &logits,
                &target,
                m,
                n,
                scale,
            ),
        }
        .unwrap();
        let mut c = vec![f32::NAN; m * n];
        let mut totals = start.clone();
        let extras = MatmulExtras {
            target: Some(&target),
            loss_totals: Some(&mut totals),
            loss_scale: scale,
            ..Default::default()
        };
        let shape = MatmulShape {
            loss: Some(loss),
            ..plain
        };
        matmul_with_extras(&mut c, &a, &b, Some(&bias), extras, &shape).unwrap();
        assert_eq!(c, expected_grad, "{loss:?} gradient");
        for row in 0..m {
            assert_eq!(totals[row * n], row_totals[row], "{loss:?} row {row}");
            assert_eq!(
                totals[row * n + 1..(row + 1) * n],
                start[row * n + 1..(row + 1) * n]
            );
        }
    }
}

#[test]
fn matmul_loss_store_refuses_other_options_and_missing_buffers() {
    let (m, n, k) = (2, 3, 4);
    let (a, b) = (vec![0.0f32; m * k], vec![0.0f32; k * n]);
    let target = vec![0.0f32; m * n];
    let loss = MatmulShape {
        loss: Some(StoreLoss::Bce),
        ..MatmulShape::new(m, n, k)
    };
    let run = |shape: &MatmulShape, with_target: bool, totals_len: usize| {
        let mut c = vec![0.0f32; m * n];
        let mut totals = vec![0.0f32; totals_len];
        let extras = MatmulExtras {
            target: with_target.then_some(&target[..]),
            loss_totals: (totals_len > 0).then_some(&mut totals[..]),
            ..Default::default()
        };
        matmul_with_extras(&mut c, &a, &b, None, extras, shape)
    };
    let others = [
        MatmulShape {
            activation: Some(Activation::Sigmoid),
            ..loss
        },
        MatmulShape {
            activation_grad: Some(Activation::Relu),
            ..loss
        },
        MatmulShape {
            accumulate: true,
            ..loss
        },
        MatmulShape {
            row_sums: true,
            ..loss
        },
        MatmulShape {
            addend: true,
            ..loss
        },
    ];
    for shape in &others {
        assert_shape_error(run(shape, true, m * n), "matmul", "loss epilogue");
    }
    assert_shape_error(run(&loss, false, m * n), "matmul", "the target with loss");
    assert_shape_error(run(&loss, true, 0), "matmul", "the target with loss");
    assert_shape_error(run(&loss, true, m), "matmul", "loss_totals has 2");
    assert!(run(&loss, true, m * n).is_ok());
}

/// The L1 penalty in the matmul's store equals the matmul (dx = dy·W), then l1_backward adding
/// to it and the ReLU's backward (or nothing, a linear code), bit for bit; each row's
/// penalty is l1_forward's, added to the row's first slot of the totals.
#[test]
fn matmul_l1_grad_store_equals_the_matmul_then_the_l1_and_activation_backwards() {
    let (m, n, k) = (3, 5, 4);
    let value = |i: usize, scale: f32| ((i * 37 % 11) as f32 - 5.0) * scale;
    let a: Vec<f32> = (0..m * k).map(|i| value(i, 0.3)).collect();
    let b: Vec<f32> = (0..n * k).map(|i| value(i + 3, 0.2)).collect();
    // Codes of both signs and zeros; a ReLU's are its non-negative part.
    let signed: Vec<f32> = (0..m * n).map(|i| value(i + 5, 0.37)).collect();
    let start: Vec<f32> = (0..m * n).map(|i| value(i + 9, 0.15).abs()).collect();
    let scale = 0.01f32;
    for activation_grad in [Some(Activation::Relu), None] {
        let code: Vec<f32> = match activation_grad {
            Some(_) => signed.iter().map(|x| x.max(0.0)).collect(),
            None => signed.clone(),
        };
        let mut expected = vec![0.0f32; m * n];
        matmul(&mut expected, &a, &b, None, &MatmulShape::new(m, n, k)).unwrap();
        latent::cpu::l1::l1_backward(&mut expected, &code, scale, true).unwrap();
        if activation_grad.is_some() {
            let dy = expected.clone();
            activation::relu_backward(&mut expected, &code, &dy).unwrap();
        }
        let mut penalties = vec![0.0f32; m];
        latent::cpu::l1::l1_forward(&mut penalties, &code, m, n).unwrap();
        let mut expected_totals = start.clone();
        for (row, penalty) in penalties.iter().enumerate() {
            expected_totals[row * n] += penalty;
        }
        let shape = MatmulShape {
            activation_grad,
            l1_grad: true,
            ..MatmulShape::new(m, n, k)
        };
        let (mut c, mut totals) = (vec![f32::NAN; m * n], start.clone());
        let extras = MatmulExtras {
            saved: Some(&code),
            loss_totals: Some(&mut totals),
            l1_scale: scale,
            ..Default::default()
        };
        matmul_with_extras(&mut c, &a, &b, None, extras, &shape).unwrap();
        assert_eq!(common::bits(&c), common::bits(&expected), "{shape:?}");
        assert_eq!(common::bits(&totals), common::bits(&expected_totals));
        // Refused: with an addend, accumulating, with a bias, without the code or totals.
        for wrong in [
            MatmulShape {
                addend: true,
                ..shape
            },
            MatmulShape {
                accumulate: true,
                ..shape
            },
        ] {
            let extras = MatmulExtras {
                saved: Some(&code),
                loss_totals: Some(&mut totals),
                addend: wrong.addend.then_some(&code[..]),
                ..Default::default()
            };
            assert_shape_error(
                matmul_with_extras(&mut c, &a, &b, None, extras, &wrong),
                "matmul",
                "L1 penalty",
            );
        }
        let with_bias = MatmulExtras {
            saved: Some(&code),
            loss_totals: Some(&mut totals),
            ..Default::default()
        };
        let bias = vec![0.0f32; n];
        assert_shape_error(
            matmul_with_extras(&mut c, &a, &b, Some(&bias), with_bias, &shape),
            "matmul",
            "without a bias",
        );
        let no_totals = MatmulExtras {
            saved: Some(&code),
            ..Default::default()
        };
        assert_shape_error(
            matmul_with_extras(&mut c, &a, &b, None, no_totals, &shape),
            "matmul",
            "loss totals with loss or l1_grad",
        );
    }
}

/// The reparameterization's backward in the matmul's store equals the matmul (dz = op(A)·op(B),
/// or its first l columns) followed by reparameterize_backward, bit for bit: dstats written,
/// and added to, at each transpose, with all of the product's columns and with the last two
/// dropped (a conditional VAE's label).
#[test]
fn matmul_reparam_grad_store_equals_the_matmul_then_reparameterize_backward() {
    let (m, n, k) = (3, 5, 4);
    let value = |i: usize, scale: f32| ((i * 37 % 11) as f32 - 5.0) * scale;
    let a: Vec<f32> = (0..m * k).map(|i| value(i, 0.3)).collect();
    let b: Vec<f32> = (0..n * k).map(|i| value(i + 3, 0.2)).collect();
    for (l, accumulate) in [(n, false), (n, true), (3, false), (3, true)] {
        let eps: Vec<f32> = (0..m * l).map(|i| value(i + 5, 0.37)).collect();
        // μ | logvar: logvar in [−3, 1].
        let stats: Vec<f32> = (0..m * 2 * l).map(|i| value(i + 1, 0.4) - 1.0).collect();
        let start: Vec<f32> = (0..m * 2 * l).map(|i| value(i + 9, 0.15)).collect();
        for (trans_a, trans_b) in [(false, false), (false, true), (true, false), (true, true)] {
            let plain = MatmulShape {
                trans_a,
                trans_b,
                ..MatmulShape::new(m, n, k)
            };
            let mut product = vec![0.0f32; m * n];
            matmul(&mut product, &a, &b, None, &plain).unwrap();
            let dz: Vec<f32> = product
                .chunks(n)
                .flat_map(|row| row[..l].to_vec())
                .collect();
            let mut expected = if accumulate {
                start.clone()
            } else {
                vec![f32::NAN; m * 2 * l]
            };
            reparameterize::reparameterize_backward(
                &mut expected,
                &eps,
                &stats,
                &dz,
                m,
                l,
                accumulate,
            )
            .unwrap();
            let mut c = if accumulate {
                start.clone()
            } else {
                vec![f32::NAN; m * 2 * l]
            };
            let extras = MatmulExtras {
                eps: Some(&eps),
                stats: Some(&stats),
                ..Default::default()
            };
            let shape = MatmulShape {
                reparam_grad: Some(l),
                accumulate,
                ..plain
            };
            matmul_with_extras(&mut c, &a, &b, None, extras, &shape).unwrap();
            assert_eq!(common::bits(&c), common::bits(&expected), "{shape:?}");
        }
    }
}

#[test]
fn matmul_reparam_grad_store_refuses_other_options_and_missing_buffers() {
    let (m, n, k) = (2, 3, 4);
    let (a, b) = (vec![0.0f32; m * k], vec![0.0f32; k * n]);
    let (eps, stats, bias) = (
        vec![0.0f32; m * n],
        vec![0.0f32; m * 2 * n],
        vec![0.0f32; n],
    );
    let (saved, addend, target) = (
        vec![0.5f32; m * n],
        vec![0.0f32; m * n],
        vec![0.0f32; m * n],
    );
    let reparam = MatmulShape {
        reparam_grad: Some(n),
        ..MatmulShape::new(m, n, k)
    };
    // Each option with its own buffer too, so that only the combination is at fault.
    let run = |shape: &MatmulShape, eps_len: usize, stats_len: usize, c_len: usize| {
        let mut c = vec![0.0f32; c_len];
        let mut sums = vec![0.0f32; m];
        let mut totals = vec![0.0f32; m * n];
        let extras = MatmulExtras {
            eps: (eps_len > 0).then_some(&eps[..eps_len.min(m * n)]),
            stats: (stats_len > 0).then_some(&stats[..stats_len.min(m * 2 * n)]),
            saved: shape.activation_grad.is_some().then_some(&saved[..]),
            addend: shape.addend.then_some(&addend[..]),
            row_sums: shape.row_sums.then_some(&mut sums[..]),
            target: shape.loss.is_some().then_some(&target[..]),
            loss_totals: shape.loss.is_some().then_some(&mut totals[..]),
            ..Default::default()
        };
        matmul_with_extras(&mut c, &a, &b, None, extras, shape)
    };
    let others = [
        MatmulShape {
            activation: Some(Activation::Sigmoid),
            ..reparam
        },
        MatmulShape {
            activation_grad: Some(Activation::Relu),
            ..reparam
        },
        MatmulShape {
            row_sums: true,
            ..reparam
        },
        MatmulShape {
            addend: true,
            ..reparam
        },
        MatmulShape {
            loss: Some(StoreLoss::Mse),
            ..reparam
        },
    ];
    let full = (m * n, m * 2 * n, m * 2 * n);
    for shape in &others {
        assert_shape_error(
            run(shape, full.0, full.1, full.2),
            "matmul",
            "reparameterization's backward",
        );
    }
    // With a bias.
    let mut c = vec![0.0f32; m * 2 * n];
    let extras = MatmulExtras {
        eps: Some(&eps),
        stats: Some(&stats),
        ..Default::default()
    };
    assert_shape_error(
        matmul_with_extras(&mut c, &a, &b, Some(&bias), extras, &reparam),
        "matmul",
        "without a bias",
    );
    assert_shape_error(run(&reparam, 0, full.1, full.2), "matmul", "eps and stats");
    assert_shape_error(run(&reparam, full.0, 0, full.2), "matmul", "eps and stats");
    assert_shape_error(run(&reparam, full.0, full.1, m * n), "matmul", "C has 6");
    assert_shape_error(run(&reparam, m, full.1, full.2), "matmul", "eps has 2");
    assert_shape_error(
        run(&reparam, full.0, m * n, full.2),
        "matmul",
        "stats has 6",
    );
    // eps and stats without reparam_grad.
    assert_shape_error(
        run(&MatmulShape::new(m, n, k), full.0, full.1, m * n),
        "matmul",
        "eps and stats",
    );
    assert!(run(&reparam, full.0, full.1, full.2).is_ok());
    // dz from none of the product's columns, or from more than it has.
    for latent in [0, n + 1] {
        let wrong = MatmulShape {
            reparam_grad: Some(latent),
            ..reparam
        };
        assert_shape_error(
            run(&wrong, full.0, full.1, full.2),
            "matmul",
            "needs 1 to 3",
        );
    }
    // dz from the first 2 of 3 columns: ε (m, 2), stats and C (m, 4).
    let fewer = MatmulShape {
        reparam_grad: Some(2),
        ..reparam
    };
    assert_shape_error(run(&fewer, full.0, m * 4, m * 4), "matmul", "eps has 6");
    assert!(run(&fewer, m * 2, m * 4, m * 4).is_ok());
    let accumulating = MatmulShape {
        accumulate: true,
        trans_a: true,
        trans_b: true,
        ..reparam
    };
    assert!(run(&accumulating, full.0, full.1, full.2).is_ok());
}

/// The matmul twin splits the rows of a large multiply (4M multiply-adds or more) between
/// threads. Each row must come out exactly as when it is computed alone (a one-row multiply
/// stays on one thread): with bias, activation and accumulate; transposed A with row sums;
/// a loss's gradient and totals; and the reparameterization's backward (C two codes wide, the
/// codes all of the product's columns or its first 200).
#[test]
fn a_multiply_split_between_threads_equals_its_rows_one_at_a_time() {
    let (m, n, k) = (64, 256, 256);
    let mut state = 12345u64;
    let mut values = |len: usize| -> Vec<f32> {
        (0..len)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
            })
            .collect()
    };
    let (a, b, bias, start) = (values(m * k), values(k * n), values(n), values(m * 2 * n));
    let (target, eps, stats) = (values(m * n), values(m * n), values(m * 2 * n));
    let plain = MatmulShape::new(m, n, k);
    let shapes = [
        MatmulShape {
            trans_b: true,
            accumulate: true,
            activation: Some(Activation::Tanh),
            ..plain
        },
        MatmulShape {
            trans_a: true,
            row_sums: true,
            ..plain
        },
        MatmulShape {
            loss: Some(StoreLoss::Bce),
            ..plain
        },
        MatmulShape {
            reparam_grad: Some(n),
            ..plain
        },
        MatmulShape {
            reparam_grad: Some(200),
            ..plain
        },
    ];
    for shape in shapes {
        let width = shape.reparam_grad.map_or(n, |l| 2 * l);
        let latent = shape.reparam_grad.unwrap_or(n);
        let loss = shape.loss.is_some();
        // (C, row sums, loss totals) of rows `rows`, A's rows taken as op(A) has them.
        let run = |rows: std::ops::Range<usize>| {
            let r = rows.len();
            let a_rows: Vec<f32> = if shape.trans_a {
                rows.clone()
                    .flat_map(|row| (0..k).map(move |p| (row, p)))
                    .map(|(row, p)| a[p * m + row])
                    .collect()
            } else {
                a[rows.start * k..rows.end * k].to_vec()
            };
            let mut c = start[rows.start * width..rows.end * width].to_vec();
            let mut sums = vec![0.0f32; r];
            let mut totals = vec![0.0f32; r * n];
            let span = rows.start * n..rows.end * n;
            let extras = MatmulExtras {
                row_sums: shape.row_sums.then_some(&mut sums[..]),
                target: loss.then_some(&target[span.clone()]),
                loss_totals: loss.then_some(&mut totals[..]),
                loss_scale: 0.5,
                eps: shape
                    .reparam_grad
                    .map(|_| &eps[rows.start * latent..rows.end * latent]),
                stats: shape
                    .reparam_grad
                    .map(|_| &stats[rows.start * 2 * latent..rows.end * 2 * latent]),
                ..Default::default()
            };
            let row_shape = MatmulShape {
                m: r,
                trans_a: false,
                ..shape
            };
            let bias = shape.reparam_grad.is_none().then_some(&bias[..]);
            matmul_with_extras(&mut c, &a_rows, &b, bias, extras, &row_shape).unwrap();
            (c, sums, totals)
        };
        let whole = run(0..m);
        let (mut c, mut sums, mut totals) = (Vec::new(), Vec::new(), Vec::new());
        for row in 0..m {
            let one = run(row..row + 1);
            c.extend(one.0);
            sums.extend(one.1);
            totals.extend(one.2);
        }
        for (name, whole, alone) in [
            ("C", &whole.0, &c),
            ("row sums", &whole.1, &sums),
            ("totals", &whole.2, &totals),
        ] {
            let first = whole
                .iter()
                .zip(alone)
                .position(|(w, a)| w.to_bits() != a.to_bits());
            assert!(
                whole.len() == alone.len() && first.is_none(),
                "{name} differ first at {first:?} ({} vs {} values): {shape:?}",
                whole.len(),
                alone.len()
            );
        }
    }
}

/// The element-wise twins that split their work between threads (Adam, BCE forward and
/// backward, from 16k elements; σ and tanh, from 4k) give each element or row the bits it
/// gets alone: a part computed at the wrong offset, or twice, or not at all, fails.
#[test]
fn threaded_twins_give_each_element_the_result_it_gets_alone() {
    type BackwardTwin = fn(&mut [f32], &[f32], &[f32]) -> latent::Result<()>;
    let n = 3 * 16_384 + 5;
    let value = |i: usize, scale: f32| ((i * 7919 % 263) as f32 - 131.0) * scale;
    let grad: Vec<f32> = (0..n).map(|i| value(i, 0.01)).collect();
    let config = adam::AdamConfig {
        weight_decay: 0.01,
        ..Default::default()
    };
    let fresh = || {
        (
            (0..n).map(|i| value(i + 1, 0.003)).collect::<Vec<f32>>(),
            (0..n).map(|i| value(i + 2, 0.001)).collect::<Vec<f32>>(),
            (0..n)
                .map(|i| value(i + 3, 0.001).abs())
                .collect::<Vec<f32>>(),
        )
    };
    let (mut param, mut m, mut v) = fresh();
    adam::adam_step(&mut param, &mut m, &mut v, &grad, 3, &config).unwrap();
    let (mut param1, mut m1, mut v1) = fresh();
    for i in 0..n {
        let one = i..i + 1;
        adam::adam_step(
            &mut param1[one.clone()],
            &mut m1[one.clone()],
            &mut v1[one.clone()],
            &grad[one],
            3,
            &config,
        )
        .unwrap();
    }
    assert_eq!(
        common::bits(&param),
        common::bits(&param1),
        "Adam's parameters"
    );
    assert_eq!(common::bits(&m), common::bits(&m1), "Adam's first moments");
    assert_eq!(common::bits(&v), common::bits(&v1), "Adam's second moments");

    let x: Vec<f32> = (0..n).map(|i| value(i, 0.05)).collect();
    let (mut sigmoid, mut tanh) = (vec![0.0f32; n], vec![0.0f32; n]);
    activation::sigmoid_forward(&mut sigmoid, &x).unwrap();
    activation::tanh_forward(&mut tanh, &x).unwrap();
    for i in 0..n {
        let mut alone = [0.0f32];
        activation::sigmoid_forward(&mut alone, &x[i..i + 1]).unwrap();
        assert_eq!(sigmoid[i].to_bits(), alone[0].to_bits(), "σ element {i}");
        activation::tanh_forward(&mut alone, &x[i..i + 1]).unwrap();
        assert_eq!(tanh[i].to_bits(), alone[0].to_bits(), "tanh element {i}");
    }
    // ReLU forward, and each backward from its saved output.
    let dy: Vec<f32> = (0..n).map(|i| value(i + 7, 0.02)).collect();
    let mut relu = vec![0.0f32; n];
    activation::relu_forward(&mut relu, &x).unwrap();
    let backwards: [(&str, &[f32], BackwardTwin); 3] = [
        ("ReLU", &relu, activation::relu_backward),
        ("σ", &sigmoid, activation::sigmoid_backward),
        ("tanh", &tanh, activation::tanh_backward),
    ];
    for (name, y, backward) in backwards {
        let mut dx = vec![f32::NAN; n];
        backward(&mut dx, y, &dy).unwrap();
        for i in 0..n {
            let mut alone = [f32::NAN];
            backward(&mut alone, &y[i..i + 1], &dy[i..i + 1]).unwrap();
            assert_eq!(dx[i].to_bits(), alone[0].to_bits(), "{name} dx element {i}");
        }
    }
    for i in 0..n {
        let mut alone = [f32::NAN];
        activation::relu_forward(&mut alone, &x[i..i + 1]).unwrap();
        assert_eq!(relu[i].to_bits(), alone[0].to_bits(), "ReLU element {i}");
    }

    let (rows, cols) = (n / 1000, 1000);
    let logits: Vec<f32> = (0..rows * cols).map(|i| value(i, 0.05)).collect();
    let target: Vec<f32> = (0..rows * cols).map(|i| (i % 3) as f32 / 2.0).collect();
    let mut loss = vec![0.0f32; rows];
    bce::bce_forward(&mut loss, &logits, &target, rows, cols).unwrap();
    let mut dlogits = vec![0.0f32; rows * cols];
    bce::bce_backward(&mut dlogits, &logits, &target, 0.5).unwrap();
    let row_grad: Vec<f32> = (0..rows).map(|r| value(r, 0.1)).collect();
    let mut drows = vec![0.0f32; rows * cols];
    bce::bce_backward_rows(&mut drows, &logits, &target, &row_grad, 0.5, 2.0).unwrap();
    for r in 0..rows {
        let span = r * cols..(r + 1) * cols;
        let (logits, target) = (&logits[span.clone()], &target[span.clone()]);
        let mut alone = [0.0f32];
        bce::bce_forward(&mut alone, logits, target, 1, cols).unwrap();
        assert_eq!(loss[r].to_bits(), alone[0].to_bits(), "BCE row {r}");
        let mut alone = vec![0.0f32; cols];
        bce::bce_backward(&mut alone, logits, target, 0.5).unwrap();
        assert_eq!(
            common::bits(&dlogits[span.clone()]),
            common::bits(&alone),
            "dlogits row {r}"
        );
        bce::bce_backward_rows(&mut alone, logits, target, &row_grad[r..r + 1], 0.5, 2.0).unwrap();
        assert_eq!(
            common::bits(&drows[span]),
            common::bits(&alone),
            "row-weighted dlogits row {r}"
        );
    }
}

/// The loss gradients flush results below f32's smallest normal (2^-126) to 0 (an IWAE row
/// of tiny importance weight made subnormal gradients, each a microcode assist in the next
/// multiply on x86); results just above stay as they are. Rows of 19 values: the BCE's
/// vector lanes and their remainder.
#[test]
fn loss_gradients_flush_subnormal_results_to_zero() {
    let min = f32::MIN_POSITIVE;
    let cols = 19;
    // σ(0) − 0 = 0.5 and 2 · (0.75 − 0.5) = 0.5: each row's gradient is half its weight.
    let (logits, bce_target) = (vec![0.0f32; 3 * cols], vec![0.0f32; 3 * cols]);
    let (x, mse_target) = (vec![0.75f32; 3 * cols], vec![0.5f32; 3 * cols]);
    let row_grad = [1.5 * min, 2.5 * min, -1.5 * min];
    let expected_rows = [0.0, 1.25 * min, 0.0];
    let mut d = vec![f32::NAN; 3 * cols];
    bce::bce_backward_rows(&mut d, &logits, &bce_target, &row_grad, 0.0, 1.0).unwrap();
    let mut m = vec![f32::NAN; 3 * cols];
    mse::mse_backward_rows(&mut m, &x, &mse_target, &row_grad, 0.0, 1.0).unwrap();
    for (r, expected) in expected_rows.iter().enumerate() {
        let span = r * cols..(r + 1) * cols;
        assert!(
            d[span.clone()].iter().all(|v| v == expected),
            "BCE row {r}: {:?}",
            &d[span.clone()]
        );
        assert!(
            m[span.clone()].iter().all(|v| v == expected),
            "MSE row {r}: {:?}",
            &m[span]
        );
    }
    // The same for one scale over every element.
    for (scale, expected) in [(1.5 * min, 0.0), (2.5 * min, 1.25 * min)] {
        bce::bce_backward(&mut d, &logits, &bce_target, scale).unwrap();
        mse::mse_backward(&mut m, &x, &mse_target, scale).unwrap();
        assert!(
            d.iter().chain(&m).all(|v| *v == expected),
            "scale {scale:e}"
        );
    }
}

/// Adam keeps a moment that decays below f32's smallest normal (2^-126) at 0, as
/// shaders/lib/adam_update.wgsl does (subnormals cost a microcode assist per operation on
/// x86); moments just above stay as they are.
#[test]
fn adam_keeps_subnormal_moments_at_zero() {
    let min = f32::MIN_POSITIVE;
    // Zero gradients: m decays by 0.9 and v by 0.999 each step.
    let mut m = vec![1.05 * min, -1.05 * min, 2.0 * min, 0.0];
    let mut v = vec![1.0005 * min, 2.0 * min, 1.0005 * min, 0.0];
    let mut param = vec![0.0f32; 4];
    adam::adam_step(
        &mut param,
        &mut m,
        &mut v,
        &[0.0; 4],
        5,
        &Default::default(),
    )
    .unwrap();
    assert_eq!(m, [0.0, 0.0, 0.9 * 2.0 * min, 0.0]);
    assert_eq!(v, [0.0, 0.999 * 2.0 * min, 0.0, 0.0]);
    assert!(m.iter().chain(&v).all(|x| *x == 0.0 || x.is_normal()));
}
