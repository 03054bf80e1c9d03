//! Every kernel against its CPU twin on the GPU (lavapipe in CI), forward and backward, on
//! fresh random inputs at awkward shapes (1, primes, and the model shapes 128×784×400), with
//! NaN-poisoned outputs. The shapes and the bound each comparison allows live in
//! src/validate/checks.rs, shared with `latent validate`.

mod common;

use std::io::Write;

use latent::validate::{check_families, Family, ShapeSet, Validator};

fn check(test: &str, family: Family) {
    let Some(ctx) = common::gpu(test) else { return };
    let seed = common::seed();
    let mut validator = Validator::new(ctx, seed, 0);
    let rows = check_families(&mut validator, family, ShapeSet::Full);
    assert!(!rows.is_empty(), "{test}: no checks ran");
    let failed: Vec<_> = rows.iter().filter(|r| !r.passed).collect();
    assert!(
        failed.is_empty(),
        "{test} with LATENT_TEST_SEED={seed}: {failed:#?}"
    );
}

/// Kernels read their `params` from a uniform buffer on GPUs and from a storage buffer on CPU
/// adapters (lavapipe specializes shaders on uniform values: GpuContext::params_in_storage).
/// The suite runs the adapter's own form; this runs every family with the other one, so that
/// CI on lavapipe also runs the uniform form GPUs use.
#[test]
fn every_kernel_matches_cpu_with_the_other_params_binding() {
    use latent::gpu::{GpuContext, GpuOptions};

    let test = "every_kernel_matches_cpu_with_the_other_params_binding";
    if common::gpu(test).is_none() {
        return;
    }
    let ctx = GpuContext::new(&GpuOptions::from_env().unwrap()).unwrap();
    let cpu_adapter = ctx.info.device_type == wgpu::DeviceType::Cpu;
    assert_eq!(ctx.params_in_storage(), cpu_adapter);
    ctx.set_params_in_storage(!cpu_adapter).unwrap();
    assert_eq!(ctx.params_in_storage(), !cpu_adapter);
    check_every_family(&ctx, &format!("params in storage {}", !cpu_adapter));
}

/// Every kernel family at the quick shapes on `ctx`, asserted to pass (`what` says how the
/// context differs from the suite's).
fn check_every_family(ctx: &latent::gpu::GpuContext, what: &str) {
    let seed = common::seed();
    let mut validator = Validator::new(ctx, seed, 0);
    let rows: Vec<_> = Family::ALL
        .iter()
        .flat_map(|&family| check_families(&mut validator, family, ShapeSet::Quick))
        .collect();
    assert!(rows.len() > 100, "{what}: {} checks", rows.len());
    let failed: Vec<_> = rows.iter().filter(|r| !r.passed).collect();
    assert!(
        failed.is_empty(),
        "{what}, LATENT_TEST_SEED={seed}: {failed:#?}"
    );
}

/// The GL backend runs the same kernels through naga's GLSL on another driver (llvmpipe in
/// CI): every family checked there too, as `latent validate --backend gl` does. A kernel
/// has passed on lavapipe's Vulkan and failed on llvmpipe's GL (the VAE head's first z |
/// label, BENCHMARKS.md session 21).
#[test]
fn every_kernel_matches_cpu_on_gl() {
    let test = "every_kernel_matches_cpu_on_gl";
    let Some(ctx) = common::gl(test) else { return };
    assert_eq!(ctx.info.backend, wgpu::Backend::Gl);
    check_every_family(&ctx, &format!("on {}", ctx.describe()));
}

#[test]
fn matmul_matches_cpu() {
    check("matmul_matches_cpu", Family::Matmul);
}

#[test]
fn reductions_match_cpu() {
    check("reductions_match_cpu", Family::Reduce);
}

#[test]
fn activations_match_cpu() {
    check("activations_match_cpu", Family::Activation);
}

#[test]
fn mse_matches_cpu() {
    check("mse_matches_cpu", Family::Mse);
}

#[test]
fn bce_matches_cpu() {
    check("bce_matches_cpu", Family::Bce);
}

#[test]
fn philox_matches_cpu_and_known_answers() {
    check("philox_matches_cpu_and_known_answers", Family::Philox);
}

#[test]
fn reparameterize_matches_cpu() {
    check("reparameterize_matches_cpu", Family::Reparameterize);
}

#[test]
fn kl_matches_cpu() {
    check("kl_matches_cpu", Family::Kl);
}

#[test]
fn vae_head_matches_cpu() {
    check("vae_head_matches_cpu", Family::VaeHead);
}

#[test]
fn corrupt_matches_cpu() {
    check("corrupt_matches_cpu", Family::Corrupt);
}

#[test]
fn sparsity_penalties_match_cpu() {
    check("sparsity_penalties_match_cpu", Family::Sparsity);
}

#[test]
fn concat_matches_cpu() {
    check("concat_matches_cpu", Family::Concat);
}

#[test]
fn repeat_rows_match_cpu() {
    check("repeat_rows_match_cpu", Family::RepeatRows);
}

#[test]
fn importance_weights_match_cpu() {
    check("importance_weights_match_cpu", Family::ImportanceWeight);
}

#[test]
fn adam_matches_cpu() {
    check("adam_matches_cpu", Family::Adam);
}

/// The Adam kernels keep subnormal moments at 0 as the twin does: the same bits from moments
/// that decay just below 2^-126 and just above it, for the scalar entry (n = 5) and the vec4
/// one (n = 8).
#[test]
fn adam_keeps_subnormal_moments_at_zero_like_the_twin() {
    use latent::cpu::adam::{adam_step as adam_twin, AdamConfig};
    use latent::kernels::adam::adam_step;

    let Some(ctx) = common::gpu("adam_keeps_subnormal_moments_at_zero_like_the_twin") else {
        return;
    };
    let min = f32::MIN_POSITIVE;
    let config = AdamConfig::default();
    for n in [5, 8] {
        let m: Vec<f32> = (0..n)
            .map(|i| [1.05, -1.05, 2.0, 0.5][i % 4] * min)
            .collect();
        let v: Vec<f32> = (0..n)
            .map(|i| [1.0005, 2.0, 0.5, 1.0005][i % 4] * min)
            .collect();
        let (param, grad) = (vec![0.25f32; n], vec![0.0f32; n]);
        let buffers = [("param", &param), ("m", &m), ("v", &v), ("grad", &grad)]
            .map(|(name, data)| ctx.upload(name, data).unwrap());
        let table = ctx.upload("table", &config.step_scalar_table(3)).unwrap();
        let state = ctx.upload("state", &[3u32, 0]).unwrap();
        let [gp, gm, gv, gg] = &buffers;
        let dispatch = adam_step(ctx, gp, gm, gv, gg, &table, &state, n, &config).unwrap();
        latent::kernels::run(ctx, "adam", &[&dispatch]).unwrap();
        let (mut p_cpu, mut m_cpu, mut v_cpu) = (param.clone(), m.clone(), v.clone());
        adam_twin(&mut p_cpu, &mut m_cpu, &mut v_cpu, &grad, 3, &config).unwrap();
        let m_gpu: Vec<f32> = ctx.read_buffer(gm).unwrap();
        let v_gpu: Vec<f32> = ctx.read_buffer(gv).unwrap();
        assert_eq!(common::bits(&m_gpu), common::bits(&m_cpu), "m, n = {n}");
        assert_eq!(common::bits(&v_gpu), common::bits(&v_cpu), "v, n = {n}");
        assert!(m_cpu.contains(&0.0) && m_cpu.iter().any(|x| *x != 0.0));
    }
}

#[test]
fn sgd_matches_cpu() {
    check("sgd_matches_cpu", Family::Sgd);
}

#[test]
fn gather_matches_cpu() {
    check("gather_matches_cpu", Family::Gather);
}

#[test]
fn grouped_weight_gradients_match_cpu() {
    check(
        "grouped_weight_gradients_match_cpu",
        Family::GroupedWeightGrads,
    );
}

#[test]
fn step_states_match_cpu() {
    check("step_states_match_cpu", Family::Step);
}

/// The autotune checks every candidate against the CPU twin before timing it; its pick passes
/// the twin check at the awkward shapes too, and the choice round-trips through the cache.
#[test]
fn autotune_picks_a_checked_variant_and_caches_it() {
    use latent::cpu::matmul::MatmulShape;
    use latent::kernels::autotune::{
        device_key, read_cache, select_matmul, write_cache, ChoiceSource, MatmulPolicy,
    };
    use latent::validate::check_matmul;

    let Some(ctx) = common::gpu("autotune_picks_a_checked_variant_and_caches_it") else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("latent-autotune-{}", std::process::id()));
    let cache = dir.join("autotune.json");
    let _ = std::fs::remove_dir_all(&dir);

    let tuned = select_matmul(ctx, MatmulPolicy::Auto, Some(&cache)).unwrap();
    assert_eq!(tuned.source, ChoiceSource::Tuned);
    assert!(tuned.warnings.is_empty(), "{:?}", tuned.warnings);
    assert!(tuned.timings.iter().any(|t| t.passed && t.gpu_us.is_some()));
    let seed = common::seed();
    let mut validator = Validator::new(ctx, seed, 0);
    for variant in [tuned.choice.general, tuned.choice.skinny] {
        for shape in [
            MatmulShape::new(1, 1, 1),
            MatmulShape {
                trans_a: true,
                trans_b: true,
                ..MatmulShape::new(127, 33, 785)
            },
            MatmulShape::new(128, 20, 400),
        ] {
            let row = check_matmul(&mut validator, shape, true, variant).unwrap();
            assert!(
                row.passed,
                "{variant} with LATENT_TEST_SEED={seed}: {row:?}"
            );
        }
    }

    let cached = select_matmul(ctx, MatmulPolicy::Auto, Some(&cache)).unwrap();
    assert_eq!(cached.source, ChoiceSource::Cached);
    assert_eq!(cached.choice, tuned.choice);
    assert!(cached.timings.is_empty());

    // Another device's entry is kept beside this one's.
    write_cache(&cache, "another device", &tuned.choice).unwrap();
    let key = device_key(ctx);
    assert_eq!(
        read_cache(&cache, &key, ctx).unwrap(),
        Some(tuned.choice.clone())
    );
    assert_eq!(read_cache(&cache, "a third device", ctx).unwrap(), None);
    // A damaged cache and an unwritable one (its directory is a file) give warnings, which
    // select_matmul passes on while it tunes.
    std::fs::write(&cache, "{ not json").unwrap();
    assert!(read_cache(&cache, &key, ctx).is_err());
    assert!(write_cache(&cache.join("autotune.json"), &key, &tuned.choice).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Per-shape tuning (on by default only on GPUs that are not CPUs; switched on here): a shape
/// the choice has not seen is tuned when a matmul is first prepared for it, once; the winner
/// matches the twin, joins the device's choice and the cache, and a device reading that cache
/// uses it without tuning again. With tuning off, a shape takes its class's variant.
#[test]
fn per_shape_tuning_picks_a_checked_variant_once_and_caches_it() {
    use latent::cpu::matmul::{matmul as twin, MatmulShape};
    use latent::gpu::{GpuContext, GpuOptions};
    use latent::kernels::autotune::{candidates, device_key, read_cache, ShapeClass, ShapeTuning};
    use latent::kernels::matmul::{matmul, MatmulKey};
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    let test = "per_shape_tuning_picks_a_checked_variant_once_and_caches_it";
    if common::gpu(test).is_none() {
        return;
    }
    // A device of its own: the shared one must keep its choice for the other tests.
    let ctx = GpuContext::new(&GpuOptions::from_env().unwrap()).unwrap();
    let dir = std::env::temp_dir().join(format!("latent-shape-tuning-{}", std::process::id()));
    let cache = dir.join("autotune.json");
    let _ = std::fs::remove_dir_all(&dir);
    ctx.set_shape_tuning(Some(ShapeTuning::new(&ctx, Some(&cache))));

    let seed = common::seed();
    let mut rng = StdRng::seed_from_u64(seed);
    // (36, 20, 44) NT: M, N, K multiples of 4 (the vec4 files); (130, 36, 40) TN: more than
    // 64 rows, so the tuning's check compares sampled rows; (20, 400, 128) TN: skinny.
    let shapes = [
        MatmulShape {
            trans_b: true,
            ..MatmulShape::new(36, 20, 44)
        },
        MatmulShape {
            trans_a: true,
            ..MatmulShape::new(130, 36, 40)
        },
        MatmulShape {
            trans_a: true,
            ..MatmulShape::new(20, 400, 128)
        },
    ];
    let run_and_check = |ctx: &GpuContext, rng: &mut StdRng, shape: &MatmulShape| {
        let (m, n, k) = (shape.m, shape.n, shape.k);
        let mut random =
            |len: usize| -> Vec<f32> { (0..len).map(|_| rng.random_range(-1.0..1.0)).collect() };
        let (a, b) = (random(m * k), random(k * n));
        let mut expected = vec![0.0; m * n];
        twin(&mut expected, &a, &b, None, shape).unwrap();
        let c = ctx.upload("c", &vec![f32::NAN; m * n]).unwrap();
        let (ga, gb) = (ctx.upload("a", &a).unwrap(), ctx.upload("b", &b).unwrap());
        let dispatch = matmul(ctx, &c, &ga, &gb, None, shape).unwrap();
        latent::kernels::run(ctx, test, &[&dispatch]).unwrap();
        let got: Vec<f32> = ctx.read_buffer(&c).unwrap();
        for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
            assert!(
                (g - e).abs() <= 1e-4,
                "{shape:?} [{i}]: gpu {g} cpu {e} (LATENT_TEST_SEED={seed})"
            );
        }
    };
    for shape in &shapes {
        run_and_check(&ctx, &mut rng, shape);
        let key = MatmulKey::of(shape);
        let notes = ctx.take_matmul_notes();
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(
            notes[0].starts_with(&format!("matmul tuned for {key} in")),
            "{notes:?}"
        );
        let class = ShapeClass::of(shape);
        let variant = ctx.matmul_choice().shapes[&key];
        assert!(candidates(class).contains(&variant), "{variant}");
        // Prepared again: the tuned variant, no tuning.
        run_and_check(&ctx, &mut rng, shape);
        assert!(ctx.take_matmul_notes().is_empty());
    }
    let choice = ctx.matmul_choice();
    assert_eq!(choice.shapes.len(), shapes.len());

    // The cache holds the shapes; a device that reads it runs them untuned.
    let cached = read_cache(&cache, &device_key(&ctx), &ctx)
        .unwrap()
        .unwrap();
    assert_eq!(cached, choice);
    let again = GpuContext::new(&GpuOptions::from_env().unwrap()).unwrap();
    again.set_matmul_choice(cached);
    again.set_shape_tuning(Some(ShapeTuning::new(&again, Some(&cache))));
    for shape in &shapes {
        run_and_check(&again, &mut rng, shape);
    }
    assert!(again.take_matmul_notes().is_empty());

    // Tuning off: an untuned shape takes its class's variant.
    again.set_shape_tuning(None);
    let untuned = MatmulShape::new(40, 48, 16);
    assert_eq!(again.matmul_variant(&untuned).unwrap(), choice.general);
    assert!(!again
        .matmul_choice()
        .shapes
        .contains_key(&MatmulKey::of(&untuned)));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The subgroup matmul (8-lane subgroups: lavapipe) is checked against the twin, with the
/// epilogue's extras, wherever the adapter can run it, and is the default on such CPU
/// adapters; elsewhere asking for it is a clear error, and the test says loudly that the
/// kernel was not run.
#[test]
fn subgroup_matmul_matches_cpu_where_subgroups_are_8_lanes() {
    use latent::cpu::matmul::MatmulShape;
    use latent::kernels::activation::Activation;
    use latent::kernels::matmul::{MatmulChoice, MatmulVariant};
    use latent::validate::check_matmul;

    let test = "subgroup_matmul_matches_cpu_where_subgroups_are_8_lanes";
    let Some(ctx) = common::gpu(test) else { return };
    let variant = MatmulVariant::Subgroup;
    let sizes = (ctx.info.subgroup_min_size, ctx.info.subgroup_max_size);
    let default = MatmulChoice::default_for(&ctx.info, &ctx.features);
    if let Err(e) = variant.check(ctx) {
        assert!(
            !ctx.features.subgroups || sizes != (8, 8),
            "refused wrongly: {e}"
        );
        assert!(e.to_string().contains("subgroup"), "{e}");
        assert_ne!(default.general, variant);
        let _ = writeln!(
            std::io::stderr(),
            "\n*** GPU KERNEL NOT RUN: matmul_subgroup on {} — {e}",
            ctx.describe()
        );
        return;
    }
    if ctx.info.device_type == wgpu::DeviceType::Cpu {
        assert_eq!(default, MatmulChoice::uniform(variant));
    }
    let seed = common::seed();
    let mut validator = Validator::new(ctx, seed, 0);
    // Sizes that are multiples of 4 run the vec4 file, the others the scalar one.
    let shapes = [
        // Edges in every direction: one partial tile, and rows/columns past 32.
        MatmulShape::new(1, 1, 1),
        MatmulShape::new(33, 31, 7),
        MatmulShape {
            trans_a: true,
            trans_b: true,
            accumulate: true,
            ..MatmulShape::new(65, 97, 129)
        },
        MatmulShape {
            trans_a: true,
            trans_b: true,
            accumulate: true,
            ..MatmulShape::new(68, 36, 44)
        },
        MatmulShape {
            trans_a: true,
            row_sums: true,
            ..MatmulShape::new(33, 7, 129)
        },
        // The VAE's forward, weight gradient (row sums: the bias gradient) and input
        // gradient (ReLU backward with a second layer's addend) at batch 128.
        MatmulShape {
            trans_b: true,
            activation: Some(Activation::Relu),
            ..MatmulShape::new(128, 400, 784)
        },
        MatmulShape {
            trans_a: true,
            row_sums: true,
            ..MatmulShape::new(400, 784, 128)
        },
        MatmulShape {
            activation_grad: Some(Activation::Relu),
            addend: true,
            ..MatmulShape::new(128, 400, 20)
        },
    ];
    for shape in shapes {
        let epilogue = shape.row_sums || shape.activation_grad.is_some();
        let row = if epilogue {
            latent::validate::check_matmul_backward_epilogue(&mut validator, shape, variant)
        } else {
            check_matmul(&mut validator, shape, true, variant)
        }
        .unwrap();
        assert!(
            row.passed,
            "{variant} with LATENT_TEST_SEED={seed}: {row:?}"
        );
    }
}

/// The opt-in coop-f16 matmul (A and B rounded to f16 on cooperative matrices) against the
/// twin with the f16 operands' bound, with every store option, and its admission, where the
/// adapter offers cooperative matrices it is written for (16x16x16 with 32-lane subgroups;
/// 8x8x8 with 8-lane ones: lavapipe in Mesa 26.1, dev/lavapipe_coop.sh). Elsewhere it
/// must be refused, naming what is missing, and the test says loudly that it did not run.
#[test]
fn coop_f16_matmul_matches_cpu_where_the_adapter_has_cooperative_matrices() {
    use latent::kernels::autotune::{admit_coop_f16, select_matmul, MatmulPolicy};
    use latent::kernels::matmul::{MatmulChoice, MatmulVariant};
    use latent::validate::check_matmul_variants;

    let test = "coop_f16_matmul_matches_cpu_where_the_adapter_has_cooperative_matrices";
    let Some(shared) = common::gpu(test) else {
        return;
    };
    let variant = MatmulVariant::CoopF16;
    // A device created without the experimental feature never runs it.
    if !shared
        .device
        .features()
        .contains(wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX)
    {
        let e = variant
            .check(shared)
            .expect_err("coop-f16 without the feature");
        assert!(
            e.to_string().contains("EXPERIMENTAL_COOPERATIVE_MATRIX"),
            "{e}"
        );
    }
    let Some((ctx, runs)) = common::coop_device(test) else {
        return;
    };
    if let Err(e) = runs {
        let offered = &ctx.features.cooperative_matrix;
        let lanes = (ctx.info.subgroup_min_size, ctx.info.subgroup_max_size);
        let fits = (offered.iter().any(|c| c == "16x16x16 F16->F32") && lanes == (32, 32))
            || (offered.iter().any(|c| c == "8x8x8 F16->F32") && lanes == (8, 8));
        assert!(!fits, "refused wrongly: {e}");
        assert!(e.to_string().contains("coop-f16"), "{e}");
        let selected = select_matmul(&ctx, MatmulPolicy::Force(variant), None);
        assert!(selected.is_err(), "forced without the check");
        common::coop_elsewhere(test, &ctx, &e);
        return;
    }
    // validate's matmul family for coop-f16 alone: the awkward shapes with transposes, bias
    // and accumulation, every store option, and operands far outside f16's range.
    let seed = common::seed();
    let mut v = Validator::new(&ctx, seed, 0);
    let rows = check_matmul_variants(&mut v, ShapeSet::Quick, Some(variant));
    assert!(!rows.is_empty(), "no coop-f16 checks ran");
    let failed: Vec<_> = rows.iter().filter(|r| !r.passed).collect();
    assert!(
        failed.is_empty(),
        "coop-f16 with LATENT_TEST_SEED={seed}: {failed:#?}"
    );
    assert!(
        rows.iter().all(|r| r.kernel == "matmul_coop_f16"),
        "{rows:#?}"
    );
    // Admitted when forced: the tuning shapes within the f16 bound.
    assert_eq!(admit_coop_f16(&ctx).unwrap().len(), 5);
    let selection = select_matmul(&ctx, MatmulPolicy::Force(variant), None).unwrap();
    assert_eq!(selection.choice, MatmulChoice::uniform(variant));
}

#[test]
fn matmul_policy_parses_and_rejects_bad_names() {
    use latent::kernels::autotune::MatmulPolicy;
    use latent::kernels::matmul::{MatmulTiles, MatmulVariant};
    assert_eq!("auto".parse::<MatmulPolicy>().unwrap(), MatmulPolicy::Auto);
    assert_eq!(
        "rowtile".parse::<MatmulPolicy>().unwrap(),
        MatmulPolicy::Force(MatmulVariant::RowTile)
    );
    assert_eq!(
        "subgroup".parse::<MatmulPolicy>().unwrap(),
        MatmulPolicy::Force(MatmulVariant::Subgroup)
    );
    assert_eq!(MatmulVariant::Subgroup.to_string(), "subgroup");
    let tiles = MatmulTiles {
        tile_m: 32,
        tile_n: 16,
        tile_k: 8,
        thread: 4,
        split: 1,
        prefetch: false,
    };
    assert_eq!(
        "tiled:32x16x8".parse::<MatmulPolicy>().unwrap(),
        MatmulPolicy::Force(MatmulVariant::Tiled(tiles))
    );
    assert_eq!(MatmulVariant::Tiled(tiles).to_string(), "tiled:32x16x8");
    let wide = MatmulTiles {
        tile_m: 128,
        tile_n: 128,
        tile_k: 16,
        thread: 8,
        split: 1,
        prefetch: false,
    };
    assert_eq!(
        "tiled:128x128x16x8".parse::<MatmulPolicy>().unwrap(),
        MatmulPolicy::Force(MatmulVariant::Tiled(wide))
    );
    assert_eq!(MatmulVariant::Tiled(wide).to_string(), "tiled:128x128x16x8");
    let split = MatmulTiles {
        tile_m: 32,
        tile_n: 32,
        split: 4,
        ..MatmulTiles::default()
    };
    assert_eq!(
        "tiled:32x32x16/4".parse::<MatmulPolicy>().unwrap(),
        MatmulPolicy::Force(MatmulVariant::Tiled(split))
    );
    assert_eq!(MatmulVariant::Tiled(split).to_string(), "tiled:32x32x16/4");
    for (text, tiles) in [("tiled:128x128x16x8p", wide), ("tiled:32x32x16/4p", split)] {
        let prefetched = MatmulTiles {
            prefetch: true,
            ..tiles
        };
        assert_eq!(
            text.parse::<MatmulPolicy>().unwrap(),
            MatmulPolicy::Force(MatmulVariant::Tiled(prefetched))
        );
        assert_eq!(MatmulVariant::Tiled(prefetched).to_string(), text);
    }
    for bad in [
        "",
        "fast",
        "tiled:32x16",
        "tiled:ax16x8",
        "tiled:32x32x16/",
        "tiled:32x32x16/b",
        "tiled:32x32x16pp",
        "tiled:32x32x16p/4",
    ] {
        assert!(bad.parse::<MatmulPolicy>().is_err(), "{bad:?} parsed");
    }
}

#[test]
fn weight_grads_policy_parses_and_rejects_bad_names() {
    use latent::kernels::matmul::MatmulTiles;
    use latent::kernels::matmul_grouped_tn::{WeightGrads, WeightGradsPolicy};
    let parse = |s: &str| s.parse::<WeightGradsPolicy>();
    assert_eq!(parse("auto").unwrap(), WeightGradsPolicy::Auto);
    assert_eq!(
        parse("separate").unwrap(),
        WeightGradsPolicy::Force(WeightGrads::Separate)
    );
    assert_eq!(
        parse("grouped").unwrap(),
        WeightGradsPolicy::Force(WeightGrads::Grouped(MatmulTiles::default()))
    );
    let wide = WeightGrads::Grouped(MatmulTiles {
        tile_m: 128,
        tile_n: 64,
        thread: 8,
        ..MatmulTiles::default()
    });
    assert_eq!(
        parse("grouped:128x64x16x8").unwrap(),
        WeightGradsPolicy::Force(wide)
    );
    assert_eq!(wide.to_string(), "grouped:128x64x16x8");
    assert_eq!(wide.to_string().parse::<WeightGrads>().unwrap(), wide);
    let prefetching = WeightGrads::Grouped(MatmulTiles {
        thread: 8,
        prefetch: true,
        ..MatmulTiles::default()
    });
    assert_eq!(
        parse("grouped:64x64x16x8p").unwrap(),
        WeightGradsPolicy::Force(prefetching)
    );
    assert_eq!(prefetching.to_string(), "grouped:64x64x16x8p");
    // The grouped kernel has no K split; other words are refused.
    for bad in [
        "grouped:32x32x16/4",
        "grouped:32x32x16/4p",
        "tiled:64x64x16",
        "group",
        "",
    ] {
        let e = parse(bad).unwrap_err().to_string();
        assert!(e.contains("separate, grouped"), "{bad}: {e}");
    }
}

/// Tuning a set of weight gradients (on when per-shape tuning is): both forms checked and
/// timed once, the winner kept in the device's choice and the cache, and a device reading
/// that cache uses it without timing again. A set the grouped kernel cannot take stays
/// separate untimed, and a forced policy wins over the tuned form.
#[test]
fn weight_gradient_tuning_times_both_forms_once_and_caches_the_winner() {
    use latent::gpu::{GpuContext, GpuOptions};
    use latent::kernels::autotune::{device_key, grouped_candidates, read_cache, ShapeTuning};
    use latent::kernels::matmul_grouped_tn::{GroupKey, WeightGrads, WeightGradsPolicy};

    let test = "weight_gradient_tuning_times_both_forms_once_and_caches_the_winner";
    if common::gpu(test).is_none() {
        return;
    }
    let ctx = GpuContext::new(&GpuOptions::from_env().unwrap()).unwrap();
    let dir = std::env::temp_dir().join(format!("latent-weight-grads-{}", std::process::id()));
    let cache = dir.join("autotune.json");
    let _ = std::fs::remove_dir_all(&dir);
    ctx.set_shape_tuning(Some(ShapeTuning::new(&ctx, Some(&cache))));
    let key = GroupKey {
        k: 37,
        layers: vec![(36, 20), (12, 44), (132, 8)],
        adam: false,
    };
    let form = ctx.weight_grads(&key, true).unwrap();
    let notes = ctx.take_matmul_notes();
    let tuned: Vec<&String> = notes
        .iter()
        .filter(|n| n.starts_with(&format!("weight gradients tuned for {key} in ")))
        .collect();
    assert_eq!(tuned.len(), 1, "{notes:?}");
    // The layers' own dW shapes were tuned first (a line each).
    assert_eq!(notes.len(), 1 + key.layers.len(), "{notes:?}");
    if let WeightGrads::Grouped(tiles) = form {
        let variants: Vec<_> = ctx.matmul_choice().shapes.values().copied().collect();
        assert!(
            grouped_candidates(&ctx, &variants).contains(&tiles),
            "{tiles}"
        );
    }
    assert_eq!(ctx.matmul_choice().weight_grads[&key], form);
    // Asked again: the same form, nothing timed.
    assert_eq!(ctx.weight_grads(&key, true).unwrap(), form);
    assert!(ctx.take_matmul_notes().is_empty());
    // Not groupable: separate, untimed.
    let other = GroupKey {
        k: 5,
        layers: vec![(6, 8)],
        adam: false,
    };
    assert_eq!(
        ctx.weight_grads(&other, false).unwrap(),
        WeightGrads::Separate
    );
    assert!(ctx.take_matmul_notes().is_empty());

    // The cache holds it; a device reading the cache uses it untimed.
    let cached = read_cache(&cache, &device_key(&ctx), &ctx)
        .unwrap()
        .unwrap();
    assert_eq!(cached.weight_grads[&key], form);
    let again = GpuContext::new(&GpuOptions::from_env().unwrap()).unwrap();
    again.set_matmul_choice(cached);
    again.set_shape_tuning(Some(ShapeTuning::new(&again, Some(&cache))));
    assert_eq!(again.weight_grads(&key, true).unwrap(), form);
    assert!(again.take_matmul_notes().is_empty());
    // The same layers as a whole model's set are a key of their own, timed with Adam
    // (separate with its Adam dispatch, grouped fused); their own shapes are known by now.
    let with_adam = GroupKey {
        adam: true,
        ..key.clone()
    };
    assert!(with_adam.to_string().ends_with(" with Adam"), "{with_adam}");
    let form = again.weight_grads(&with_adam, true).unwrap();
    let notes = again.take_matmul_notes();
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(
        notes[0].starts_with(&format!("weight gradients tuned for {with_adam} in ")),
        "{notes:?}"
    );
    assert_eq!(again.matmul_choice().weight_grads[&with_adam], form);
    let cached = read_cache(&cache, &device_key(&again), &again)
        .unwrap()
        .unwrap();
    assert_eq!(cached.weight_grads.len(), 2);
    // A forced form wins over the tuned one.
    let forced = match form {
        WeightGrads::Separate => WeightGrads::Grouped(Default::default()),
        WeightGrads::Grouped(_) => WeightGrads::Separate,
    };
    again.set_weight_grads_policy(WeightGradsPolicy::Force(forced));
    assert_eq!(again.weight_grads(&key, true).unwrap(), forced);
    std::fs::remove_dir_all(&dir).unwrap();
}
