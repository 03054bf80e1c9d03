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
fn importance_weights_match_cpu() {
    check("importance_weights_match_cpu", Family::ImportanceWeight);
}

#[test]
fn adam_matches_cpu() {
    check("adam_matches_cpu", Family::Adam);
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
    write_cache(&cache, "another device", tuned.choice).unwrap();
    let key = device_key(ctx);
    assert_eq!(read_cache(&cache, &key, ctx).unwrap(), Some(tuned.choice));
    assert_eq!(read_cache(&cache, "a third device", ctx).unwrap(), None);
    // A damaged cache and an unwritable one (its directory is a file) give warnings, which
    // select_matmul passes on while it tunes.
    std::fs::write(&cache, "{ not json").unwrap();
    assert!(read_cache(&cache, &key, ctx).is_err());
    assert!(write_cache(&cache.join("autotune.json"), &key, tuned.choice).is_err());
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
    };
    assert_eq!(
        "tiled:128x128x16x8".parse::<MatmulPolicy>().unwrap(),
        MatmulPolicy::Force(MatmulVariant::Tiled(wide))
    );
    assert_eq!(MatmulVariant::Tiled(wide).to_string(), "tiled:128x128x16x8");
    for bad in ["", "fast", "tiled:32x16", "tiled:ax16x8"] {
        assert!(bad.parse::<MatmulPolicy>().is_err(), "{bad:?} parsed");
    }
}
