//! The GPU runtime: wgpu errors and bad input come back as Rust errors, buffers round-trip,
//! the pool reuses buffers, pipelines are built once, and the timer measures.

mod common;

use latent::cpu::matmul::MatmulShape;
use latent::gpu::BufferPool;
use latent::kernels::matmul::{matmul, matmul_with_tiles, MatmulTiles};
use latent::kernels::{activation::Activation, run};
use latent::Error;

#[test]
fn invalid_wgsl_becomes_a_rust_error() {
    let Some(ctx) = common::gpu("invalid_wgsl_becomes_a_rust_error") else {
        return;
    };
    let result = ctx.scoped("broken shader", || {
        ctx.device
            .create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some("broken"),
                source: wgpu::ShaderSource::Wgsl("fn main( { this is not wgsl".into()),
            })
    });
    match result {
        Err(Error::Gpu { op, message }) => {
            assert_eq!(op, "broken shader");
            assert!(!message.is_empty());
        }
        other => panic!("expected Error::Gpu, got {:?}", other.map(|_| ())),
    }
    // The device is still usable afterwards.
    let buffer = ctx.upload("after", &[1.0f32, 2.0]).unwrap();
    assert_eq!(ctx.read_buffer::<f32>(&buffer).unwrap(), vec![1.0, 2.0]);
}

#[test]
fn bad_shapes_and_sizes_are_errors_not_panics() {
    let Some(ctx) = common::gpu("bad_shapes_and_sizes_are_errors_not_panics") else {
        return;
    };
    let small = ctx.create_buffer("small", 4).unwrap();
    let shape = MatmulShape::new(3, 3, 3);
    assert!(matches!(
        matmul(ctx, &small, &small, &small, None, &shape),
        Err(Error::Shape { op: "matmul", .. })
    ));
    let zero = MatmulShape::new(0, 1, 1);
    assert!(matches!(
        matmul(ctx, &small, &small, &small, None, &zero),
        Err(Error::Shape { op: "matmul", .. })
    ));
    // Tiles that are not multiples of a thread's block, a block of 5, 8 × 8 a thread with a
    // TILE_K the vec4 staging cannot step; K split between 0 groups, split with 8 × 8 a
    // thread, split where the slabs cannot hold the groups' blocks (64 × 64 × 16 / 2), sizes
    // whose products overflow u32, and prefetching more than a thread's registers hold.
    let default = MatmulTiles::default();
    for bad_tiles in [
        MatmulTiles {
            tile_m: 6,
            ..default
        },
        MatmulTiles {
            thread: 5,
            ..default
        },
        MatmulTiles {
            thread: 8,
            tile_k: 10,
            ..default
        },
        MatmulTiles {
            split: 0,
            ..default
        },
        MatmulTiles {
            thread: 8,
            split: 2,
            ..default
        },
        MatmulTiles {
            split: 2,
            ..default
        },
        MatmulTiles {
            tile_m: u32::MAX - 3,
            tile_n: u32::MAX - 3,
            tile_k: u32::MAX - 3,
            thread: 4,
            split: u32::MAX,
            prefetch: false,
        },
        // Prefetching 32 × 32 × 64 on 64 threads: 8 vec4s of A a thread, beyond the 4 its
        // registers hold; on 16 × 16 tiles of 16 threads, 8 too.
        MatmulTiles {
            tile_m: 32,
            tile_n: 32,
            tile_k: 64,
            prefetch: true,
            ..default
        },
        MatmulTiles {
            tile_m: 16,
            tile_n: 16,
            tile_k: 32,
            prefetch: true,
            ..default
        },
    ] {
        assert!(
            matches!(
                matmul_with_tiles(
                    ctx,
                    &small,
                    &small,
                    &small,
                    None,
                    &MatmulShape::new(1, 1, 1),
                    bad_tiles
                ),
                Err(Error::Shape { .. })
            ),
            "{bad_tiles:?} accepted"
        );
    }
    let huge_tiles = MatmulTiles {
        tile_m: 512,
        tile_n: 512,
        tile_k: 64,
        thread: 4,
        split: 1,
        prefetch: false,
    };
    assert!(matmul_with_tiles(
        ctx,
        &small,
        &small,
        &small,
        None,
        &MatmulShape::new(1, 1, 1),
        huge_tiles
    )
    .is_err());
    assert!(matches!(
        Activation::Relu.forward(ctx, &small, &small, 5),
        Err(Error::Shape { .. })
    ));
    assert!(matches!(
        Activation::Relu.forward(ctx, &small, &small, 0),
        Err(Error::Shape { .. })
    ));

    let too_many = (ctx.limits.max_storage_buffer_binding_size as usize) / 4 + 1;
    match ctx.create_buffer("huge", too_many) {
        Err(Error::TooLarge { limit_name, .. }) => {
            assert_eq!(limit_name, "max_storage_buffer_binding_size")
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    assert!(matches!(
        ctx.create_buffer("empty", 0),
        Err(Error::InvalidArgument(_))
    ));
    match Activation::Relu.forward(ctx, &small, &small, 4) {
        Err(Error::InvalidArgument(message)) => {
            assert!(message.contains("must not alias"), "{message}")
        }
        other => panic!(
            "an output aliasing its input: expected an error, got {:?}",
            other.map(|d| d.name)
        ),
    }
    assert!(
        ctx.write_buffer(&small, &[0.0f32; 5]).is_err(),
        "writing past the end"
    );
    // Data sets: values that do not make the rows, and a row larger than a shard.
    use latent::kernels::gather::DataShards;
    let cap = ctx.max_binding_bytes();
    assert!(DataShards::upload_u8(ctx, "set", &[1, 2, 3], (2, 2), cap).is_err());
    assert!(DataShards::upload_f32(ctx, "set", &[1.0; 6], (2, 2), cap).is_err());
    assert!(DataShards::upload_f32(ctx, "set", &[], (0, 2), cap).is_err());
    match DataShards::upload_u8(ctx, "set", &[7; 50], (10, 5), 4) {
        Err(Error::TooLarge { what, .. }) => assert!(what.contains("row of 5 bytes"), "{what}"),
        other => panic!("expected TooLarge, got {:?}", other.map(|d| d.shards.len())),
    }
    let four = DataShards::upload_u8(ctx, "set", &[7; 50], (10, 5), 16).unwrap();
    assert_eq!((four.shards.len(), four.rows_per_shard), (4, 3));
    // Whole words a shard: 8 bytes hold one row of 5, so ten shards.
    let ten = DataShards::upload_u8(ctx, "set", &[7; 50], (10, 5), 8).unwrap();
    assert_eq!((ten.shards.len(), ten.rows_per_shard), (10, 1));
}

#[test]
fn buffers_round_trip_and_the_pool_reuses_them() {
    let Some(ctx) = common::gpu("buffers_round_trip_and_the_pool_reuses_them") else {
        return;
    };
    let data: Vec<u32> = (0..1000).map(|i| i * 7).collect();
    let buffer = ctx.upload("data", &data).unwrap();
    assert_eq!(ctx.read_buffer::<u32>(&buffer).unwrap(), data);

    let mut pool = BufferPool::default();
    let first = pool.take(ctx, "a", 64).unwrap();
    let handle = first.buffer.clone();
    pool.give(first);
    let again = pool.take(ctx, "b", 64).unwrap();
    assert!(again.buffer == handle, "same-size buffer reused");
    let other = pool.take(ctx, "c", 65).unwrap();
    assert!(other.buffer != handle);
    assert_eq!(pool.created(), 2);
}

#[test]
fn pipelines_are_built_once_and_dispatches_rerun() {
    let Some(ctx) = common::gpu("pipelines_are_built_once_and_dispatches_rerun") else {
        return;
    };
    let x = ctx.upload("x", &[-1.0f32, 2.0, -3.0, 4.0]).unwrap();
    let y = ctx.create_buffer("y", 4).unwrap();
    let first = Activation::Relu.forward(ctx, &y, &x, 4).unwrap();
    let built = ctx.pipelines().len();
    let second = Activation::Relu.forward(ctx, &y, &x, 4).unwrap();
    assert_eq!(
        ctx.pipelines().len(),
        built,
        "the second prepare reuses the pipeline"
    );
    run(ctx, "relu twice", &[&first, &second, &first]).unwrap();
    assert_eq!(
        ctx.read_buffer::<f32>(&y).unwrap(),
        vec![0.0, 2.0, 0.0, 4.0]
    );
}

#[test]
fn timer_measures_positive_gpu_time() {
    let Some(ctx) = common::gpu("timer_measures_positive_gpu_time") else {
        return;
    };
    let (a, c) = (
        ctx.upload("a", &vec![1.0f32; 64 * 64]).unwrap(),
        ctx.create_buffer("c", 64 * 64).unwrap(),
    );
    let dispatch = matmul(ctx, &c, &a, &a, None, &MatmulShape::new(64, 64, 64)).unwrap();
    let (us, _) = latent::gpu::time_gpu(ctx, 3, &|pass| dispatch.record(pass)).unwrap();
    assert!(us > 0.0 && us.is_finite(), "{us} µs");
    assert!(ctx
        .read_buffer::<f32>(&c)
        .unwrap()
        .iter()
        .all(|&v| v == 64.0));
}

/// The kernel table's dispatch-cost cases record their dispatches together and report the
/// time per dispatch.
#[test]
fn the_kernel_table_times_what_a_dispatch_costs() {
    let Some(ctx) = common::gpu("the_kernel_table_times_what_a_dispatch_costs") else {
        return;
    };
    let cases = latent::bench::kernel_cases(ctx, false).unwrap();
    for (kernel, dispatches) in [("dispatch_chained", 2), ("dispatch_apart", 16)] {
        let case = cases
            .cases
            .iter()
            .find(|c| c.kernel == kernel)
            .unwrap_or_else(|| panic!("{kernel} missing from the kernel table"));
        assert_eq!(case.dispatches.len(), dispatches, "{kernel}");
        let (run_us, _) = latent::gpu::time_gpu(ctx, 4, &|pass| case.record(pass)).unwrap();
        let us = case.per_dispatch_us(run_us);
        assert!(
            us > 0.0 && us.is_finite() && (us - run_us / dispatches as f64).abs() < 1e-9,
            "{kernel}: {us} µs a dispatch, {run_us} a run"
        );
    }
}

#[test]
fn a_lost_device_gives_errors_not_hangs() {
    if common::gpu("a_lost_device_gives_errors_not_hangs").is_none() {
        return;
    }
    // A device of its own: the shared one stays usable for the other tests.
    let options = latent::gpu::GpuOptions::from_env().unwrap();
    let ctx = latent::gpu::GpuContext::new(&options).unwrap();
    let buffer = ctx.upload("before", &[1.0f32; 16]).unwrap();
    ctx.device.destroy();
    let read = ctx.read_buffer::<f32>(&buffer);
    assert!(
        matches!(read, Err(Error::Gpu { .. }) | Err(Error::DeviceLost(_))),
        "read after destroy: {read:?}"
    );
    let upload = ctx.upload("after", &[1.0f32]);
    assert!(
        matches!(upload, Err(Error::Gpu { .. }) | Err(Error::DeviceLost(_))),
        "upload after destroy: {upload:?}"
    );
}

#[test]
fn views_bind_part_of_a_buffer() {
    let Some(ctx) = common::gpu("views_bind_part_of_a_buffer") else {
        return;
    };
    let stride = latent::gpu::VIEW_ALIGNMENT;
    let input: Vec<f32> = (0..2 * stride).map(|i| i as f32 - 70.0).collect();
    let x = ctx.upload("x", &input).unwrap();
    let y = ctx.upload("y", &vec![f32::NAN; 2 * stride]).unwrap();
    // ReLU of the second block of x into the first block of y.
    let (x_view, y_view) = (x.view(stride, 10).unwrap(), y.view(0, 10).unwrap());
    let dispatch = Activation::Relu.forward(ctx, &y_view, &x_view, 10).unwrap();
    run(ctx, "relu on views", &[&dispatch]).unwrap();
    let expected: Vec<f32> = input[stride..stride + 10]
        .iter()
        .map(|v| v.max(0.0))
        .collect();
    assert_eq!(ctx.read_buffer::<f32>(&y_view).unwrap(), expected);
    let y_all = ctx.read_buffer::<f32>(&y).unwrap();
    assert!(
        y_all[10..].iter().all(|v| v.is_nan()),
        "nothing outside the view is written"
    );
    assert!(x.view(1, 4).is_err(), "unaligned view");
    assert!(x.view(stride, 2 * stride).is_err(), "view past the end");
}

#[test]
fn a_run_too_long_for_the_adam_table_is_an_error() {
    let Some(ctx) = common::gpu("a_run_too_long_for_the_adam_table_is_an_error") else {
        return;
    };
    let (graph, _) = latent::model::ModelConfig::autoencoder(4, 2)
        .build(2)
        .unwrap();
    let plan = latent::graph::plan::Plan::compile(graph).unwrap();
    let params = latent::model::init_params(&plan, 1).unwrap();
    let bytes = [0u8; 8];
    let data = latent::graph::TrainData::new(latent::graph::Samples::U8(&bytes), 2, 4);
    let run = latent::graph::RunConfig {
        adam: Default::default(),
        seed: 1,
        total_steps: u32::MAX,
    };
    let result = latent::graph::gpu::GpuExecutor::new(ctx, &plan, &params, data, None, run);
    assert!(
        matches!(result, Err(Error::TooLarge { .. })),
        "{:?}",
        result.err()
    );
}

#[test]
fn a_host_applications_own_device_runs_latent_kernels() {
    if common::gpu("a_host_applications_own_device_runs_latent_kernels").is_none() {
        return;
    }
    // The host creates its instance, adapter and device with plain wgpu…
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
    let adapter =
        pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions::default()))
            .unwrap();
    let (device, queue) =
        pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor::default())).unwrap();
    // …and hands them to latent.
    let ctx = latent::gpu::GpuContext::from_device(device, queue, adapter.get_info());
    let x = ctx.upload("x", &[-2.0f32, 3.0, -0.5, 1.5]).unwrap();
    let y = ctx.create_buffer("y", 4).unwrap();
    let dispatch = Activation::Relu.forward(&ctx, &y, &x, 4).unwrap();
    run(&ctx, "relu on a host device", &[&dispatch]).unwrap();
    assert_eq!(
        ctx.read_buffer::<f32>(&y).unwrap(),
        vec![0.0, 3.0, 0.0, 1.5]
    );
}

/// A host's own device, requested with cooperative matrices, runs the coop-f16 matmul once
/// latent knows the adapter (`from_adapter_and_device`); `from_device` alone keeps it off.
#[test]
fn a_host_device_with_cooperative_matrices_runs_coop_f16() {
    use latent::cpu::matmul::MatmulShape;
    use latent::gpu::GpuContext;
    use latent::kernels::matmul::MatmulVariant;
    use latent::validate::{check_matmul, Validator};

    let test = "a_host_device_with_cooperative_matrices_runs_coop_f16";
    let Some((probe, runs)) = common::coop_device(test) else {
        return;
    };
    if let Err(e) = runs {
        common::coop_elsewhere(test, &probe, &e);
        return;
    }
    // The host finds the same adapter and asks for cooperative matrices itself.
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
    let adapters = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()));
    let adapter = adapters
        .into_iter()
        .find(|a| {
            a.get_info().name == probe.info.name && a.get_info().backend == probe.info.backend
        })
        .expect("the adapter latent found");
    let wanted = wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX | wgpu::Features::SHADER_F16;
    let request = || {
        let desc = wgpu::DeviceDescriptor {
            required_features: wanted,
            // SAFETY: the test runs only latent's coop-f16 matmul on this device.
            experimental_features: unsafe { wgpu::ExperimentalFeatures::enabled() },
            ..Default::default()
        };
        pollster::block_on(adapter.request_device(&desc))
            .expect("a device with cooperative matrices")
    };
    let (device, queue) = request();
    let without_adapter = GpuContext::from_device(device, queue, adapter.get_info());
    let refused = MatmulVariant::CoopF16.check(&without_adapter);
    assert!(
        refused.is_err(),
        "from_device cannot know the configurations"
    );
    let (device, queue) = request();
    let ctx = GpuContext::from_adapter_and_device(&adapter, device, queue);
    MatmulVariant::CoopF16.check(&ctx).unwrap();
    let seed = common::seed();
    let mut v = Validator::new(&ctx, seed, 0);
    let shape = MatmulShape {
        trans_b: true,
        ..MatmulShape::new(33, 31, 65)
    };
    let row = check_matmul(&mut v, shape, true, MatmulVariant::CoopF16).unwrap();
    assert!(
        row.passed && row.kernel == "matmul_coop_f16",
        "{row:?} (LATENT_TEST_SEED={seed})"
    );
}

/// With no backend asked for, training takes a real GPU without a note, and the CPU path
/// over a software rasterizer (faster there), saying so; asking for the rasterizer's
/// backend, or for the coop-f16 matmul, keeps the rasterizer.
#[test]
fn training_takes_the_cpu_path_over_a_software_rasterizer_unless_asked() {
    use latent::gpu::{Backend, GpuContext, GpuOptions};
    use latent::train::pick_device;

    let test = "training_takes_the_cpu_path_over_a_software_rasterizer_unless_asked";
    if common::gpu(test).is_none() {
        return;
    }
    let auto = GpuOptions {
        backend: Backend::Auto,
        ..Default::default()
    };
    let best = GpuContext::new(&auto).expect("an adapter: common::gpu found one");
    let (picked, note) = pick_device(&auto).unwrap();
    if best.info.device_type != wgpu::DeviceType::Cpu {
        assert!(picked.is_some() && note.is_none(), "{note:?}");
        return;
    }
    let note = note.expect("a note saying why");
    assert!(picked.is_none(), "{note}");
    assert!(note.contains("using the CPU path"), "{note}");
    let backend: Backend = best.info.backend.to_str().parse().unwrap();
    assert!(
        note.contains(&format!("--backend {}", best.info.backend.to_str())),
        "{note}"
    );
    let asked = GpuOptions {
        backend,
        ..Default::default()
    };
    let (picked, note) = pick_device(&asked).unwrap();
    assert!(picked.is_some() && note.is_none(), "{note:?}");
    let coop = GpuOptions {
        cooperative_matrix: true,
        ..auto
    };
    let (picked, note) = pick_device(&coop).unwrap();
    assert!(picked.is_some(), "{note:?}");
    assert!(note.unwrap().contains("coop-f16"));
}

/// A device that binds WebGPU's default 8 storage buffers a stage (a host's default device,
/// or `--max-storage-buffers 8`): `latent validate` names the kernels it cannot check there,
/// those that bind more; the adapter's own limits leave out none of them on lavapipe (32).
/// Such a device refuses the kernels' params in a storage buffer.
#[test]
fn validate_names_the_kernels_a_device_of_fewer_storage_buffers_leaves_out() {
    use latent::gpu::{GpuContext, GpuOptions};
    use latent::validate::left_out;

    let test = "validate_names_the_kernels_a_device_of_fewer_storage_buffers_leaves_out";
    let Some(full) = common::gpu(test) else {
        return;
    };
    let capped = GpuContext::new(&GpuOptions {
        max_storage_buffers: Some(8),
        ..GpuOptions::from_env().unwrap()
    })
    .unwrap();
    assert_eq!(capped.limits.max_storage_buffers_per_shader_stage, 8);
    let names = left_out(&capped);
    for kernel in [
        "matmul_grouped_tn ",
        "matmul_grouped_tn_adam ",
        "iwae_bound_with_recon ",
    ] {
        assert!(
            names.iter().any(|n| n.starts_with(kernel)),
            "{kernel}: {names:?}"
        );
    }
    assert!(
        names.iter().all(|n| n.contains("the device's 8")),
        "{names:?}"
    );
    if full.limits.max_storage_buffers_per_shader_stage >= 14 {
        assert!(left_out(full).is_empty(), "{:?}", left_out(full));
    }
    // Params in a storage buffer would make the kernels of 8 nine: refused, nothing changed.
    let before = capped.params_in_storage();
    let refused = capped.set_params_in_storage(true).unwrap_err().to_string();
    assert!(refused.contains("binds 8"), "{refused}");
    assert_eq!(capped.params_in_storage(), before);
    capped.set_params_in_storage(false).unwrap();
    assert!(!capped.params_in_storage());
}
