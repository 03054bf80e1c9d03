//! Host side of the WGSL kernels. Each op family has a file here paired by name with its
//! shader in shaders/ and its CPU twin in src/cpu/. Host code separates preparation (pipeline,
//! bind group and uniforms, built once into a [`Dispatch`]) from recording
//! ([`Dispatch::record`] appends the dispatch to an open compute pass, every step).

pub mod activation;
pub mod adam;
pub mod autotune;
pub mod bce;
pub mod concat;
pub mod corrupt;
pub mod gather;
pub mod iwae_bound;
pub mod kl;
pub mod kl_sparsity;
pub mod l1;
pub mod log_mean_exp;
pub mod log_weight;
pub mod matmul;
pub mod matmul_grouped_tn;
pub mod mse;
pub mod philox;
pub mod reduce;
pub mod reparameterize;
pub mod repeat_rows;
pub mod sgd;
pub mod step;
pub mod vae_head;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::error::{shape_error, Error, Result};
use crate::gpu::{GpuBuffer, GpuContext};

/// A WGSL source file and the library files it needs in front of it (WGSL has no #include).
pub struct Shader {
    pub name: &'static str,
    pub source: &'static str,
    pub includes: &'static [&'static str],
}

impl Shader {
    /// The complete WGSL text: the included library files, then the shader itself.
    pub fn full_source(&self) -> String {
        let mut text = String::new();
        for include in self.includes {
            text.push_str(include);
            text.push('\n');
        }
        text.push_str(self.source);
        text
    }
}

/// shaders/lib/grid.wgsl: workgroup size, flat thread index, workgroup sum.
pub const GRID_LIB: &str = include_str!("../../shaders/lib/grid.wgsl");
/// shaders/lib/philox.wgsl: the Philox4x32-10 generator and Box-Muller.
pub const PHILOX_LIB: &str = include_str!("../../shaders/lib/philox.wgsl");
/// shaders/lib/corrupt_four.wgsl: the noise of four elements (corrupt, gather_corrupt); after
/// PHILOX_LIB.
pub const CORRUPT_LIB: &str = include_str!("../../shaders/lib/corrupt_four.wgsl");
/// shaders/lib/loss_target.wgsl: the target row a loss compares each row with (bce, mse).
pub const LOSS_TARGET_LIB: &str = include_str!("../../shaders/lib/loss_target.wgsl");
/// shaders/lib/row_loss.wgsl: a reconstruction loss's element and derivative (bce, mse,
/// iwae_bound).
pub const ROW_LOSS_LIB: &str = include_str!("../../shaders/lib/row_loss.wgsl");

/// Every shader latent ships, for pipeline creation and for the naga test.
pub const SHADERS: &[Shader] = &[
    matmul::SHADER,
    matmul::VEC4_SHADER,
    matmul::ROWTILE_SHADER,
    matmul::SUBGROUP_SHADER,
    matmul::SUBGROUP_VEC4_SHADER,
    matmul_grouped_tn::SHADER,
    reduce::SHADER,
    activation::RELU_SHADER,
    activation::SIGMOID_SHADER,
    activation::TANH_SHADER,
    mse::SHADER,
    bce::SHADER,
    philox::SHADER,
    reparameterize::SHADER,
    kl::SHADER,
    vae_head::SHADER,
    corrupt::SHADER,
    concat::SHADER,
    repeat_rows::SHADER,
    log_weight::SHADER,
    log_mean_exp::SHADER,
    iwae_bound::SHADER,
    l1::SHADER,
    kl_sparsity::SHADER,
    adam::SHADER,
    sgd::SHADER,
    gather::SHADER,
];

/// The shaders that need wgpu's experimental cooperative matrices (naga's
/// COOPERATIVE_MATRIX and SHADER_FLOAT16 capabilities; SPIR-V only): the coop-f16 matmul at
/// its two sizes, one file.
pub const COOP_SHADERS: &[Shader] = &[matmul::COOP_F16_16X16_SHADER, matmul::COOP_F16_8X8_SHADER];

/// How an entry point uses one binding of group 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    Uniform,
    Read,
    ReadWrite,
    /// The step state [step, cursor], read-only, bound with a dynamic offset: a training run
    /// binds one table of states ([`step::StepStates`]) and each recorded step picks its row.
    Step,
}

/// One entry point of a shader and its bindings, in the order buffers are passed.
pub struct Kernel {
    pub shader: &'static Shader,
    pub entry: &'static str,
    /// (binding number, use), the uniform (if any) first.
    pub slots: &'static [(u32, Slot)],
}

/// A compute pipeline and the bind-group layout it was built with.
pub struct CachedPipeline {
    pipeline: wgpu::ComputePipeline,
    layout: wgpu::BindGroupLayout,
}

/// Pipelines by (shader, entry point, override constants), and shader modules by name:
/// each built once per device.
#[derive(Default)]
pub struct PipelineCache {
    modules: Mutex<HashMap<ModuleKey, Arc<wgpu::ShaderModule>>>,
    pipelines: Mutex<HashMap<String, Arc<CachedPipeline>>>,
}

/// What a shader module is built from besides its text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct ModuleKey {
    shader: &'static str,
    /// `params` is a storage buffer (GpuContext::params_in_storage).
    params_in_storage: bool,
    /// The module keeps wgpu's runtime checks (GpuContext::runtime_checks).
    checked: bool,
}

impl PipelineCache {
    /// Number of pipelines built so far.
    pub fn len(&self) -> usize {
        self.pipelines.lock().map(|p| p.len()).unwrap_or(0)
    }

    /// True when no pipeline has been built.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of shader modules built so far without wgpu's runtime checks
    /// (GpuContext::set_runtime_checks).
    pub fn unchecked_modules(&self) -> usize {
        self.modules
            .lock()
            .map(|m| m.keys().filter(|key| !key.checked).count())
            .unwrap_or(0)
    }
}

fn lock_error<T>(_: T) -> Error {
    Error::InvalidArgument("pipeline cache lock poisoned".into())
}

/// Every shader declares its parameters as this uniform; GpuContext::params_in_storage turns
/// it into a read-only storage buffer.
const PARAMS_UNIFORM: &str = "var<uniform> params: Params;";
const PARAMS_STORAGE: &str = "var<storage, read> params: Params;";

fn shader_module(
    ctx: &GpuContext,
    shader: &'static Shader,
    in_storage: bool,
) -> Result<Arc<wgpu::ShaderModule>> {
    let checked = ctx.runtime_checks();
    let key = ModuleKey {
        shader: shader.name,
        params_in_storage: in_storage,
        checked,
    };
    let mut modules = ctx.pipelines.modules.lock().map_err(lock_error)?;
    if let Some(module) = modules.get(&key) {
        return Ok(module.clone());
    }
    let mut source = shader.full_source();
    if in_storage {
        source = source.replace(PARAMS_UNIFORM, PARAMS_STORAGE);
    }
    let desc = wgpu::ShaderModuleDescriptor {
        label: Some(shader.name),
        source: wgpu::ShaderSource::Wgsl(source.into()),
    };
    let module = ctx.scoped(shader.name, || {
        if checked {
            ctx.device.create_shader_module(desc)
        } else {
            // SAFETY: the checks are off only after GpuContext::set_runtime_checks(false),
            // whose caller took on its contract: latent's kernels stay inside their arrays
            // and their loops end, for the shapes their host code accepts.
            unsafe {
                ctx.device
                    .create_shader_module_trusted(desc, wgpu::ShaderRuntimeChecks::unchecked())
            }
        }
    })?;
    let module = Arc::new(module);
    modules.insert(key, module.clone());
    Ok(module)
}

fn layout_entry(binding: u32, slot: Slot, params_in_storage: bool) -> wgpu::BindGroupLayoutEntry {
    let ty = match slot {
        Slot::Uniform if params_in_storage => wgpu::BufferBindingType::Storage { read_only: true },
        Slot::Uniform => wgpu::BufferBindingType::Uniform,
        Slot::Read | Slot::Step => wgpu::BufferBindingType::Storage { read_only: true },
        Slot::ReadWrite => wgpu::BufferBindingType::Storage { read_only: false },
    };
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty,
            has_dynamic_offset: slot == Slot::Step,
            min_binding_size: None,
        },
        count: None,
    }
}

/// The pipeline for `kernel` with the given override constants, its `params` a storage
/// buffer if `in_storage` (else a uniform one), built on first use.
fn pipeline(
    ctx: &GpuContext,
    kernel: &Kernel,
    constants: &[(&str, f64)],
    in_storage: bool,
) -> Result<Arc<CachedPipeline>> {
    let key = format!(
        "{}/{}/{:?}/{in_storage}/{}",
        kernel.shader.name,
        kernel.entry,
        constants,
        ctx.runtime_checks()
    );
    if let Some(p) = ctx
        .pipelines
        .pipelines
        .lock()
        .map_err(lock_error)?
        .get(&key)
    {
        return Ok(p.clone());
    }
    let module = shader_module(ctx, kernel.shader, in_storage)?;
    let entries: Vec<_> = kernel
        .slots
        .iter()
        .map(|&(b, s)| layout_entry(b, s, in_storage))
        .collect();
    let built = ctx.scoped(kernel.entry, || {
        let layout = ctx
            .device
            .create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: Some(kernel.entry),
                entries: &entries,
            });
        let pipeline_layout = ctx
            .device
            .create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some(kernel.entry),
                bind_group_layouts: &[Some(&layout)],
                immediate_size: 0,
            });
        let pipeline = ctx
            .device
            .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(kernel.entry),
                layout: Some(&pipeline_layout),
                module: &module,
                entry_point: Some(kernel.entry),
                compilation_options: wgpu::PipelineCompilationOptions {
                    constants,
                    zero_initialize_workgroup_memory: false,
                },
                cache: None,
            });
        CachedPipeline { pipeline, layout }
    })?;
    let built = Arc::new(built);
    ctx.pipelines
        .pipelines
        .lock()
        .map_err(lock_error)?
        .insert(key, built.clone());
    Ok(built)
}

/// The memory a dispatch must move at least: each element it reads counted once, each it
/// writes counted once (re-reads that caches serve are not counted). An element both read
/// and written (Adam's moments, a running total, an accumulated gradient) counts twice.
/// Uniforms and the rows of the step tables (the step state, Adam's scalars: a few words)
/// are not counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Traffic {
    pub read_bytes: u64,
    pub written_bytes: u64,
}

impl Traffic {
    /// `read` and `written` f32 (or u32) elements.
    pub fn floats(read: usize, written: usize) -> Traffic {
        Traffic {
            read_bytes: 4 * read as u64,
            written_bytes: 4 * written as u64,
        }
    }

    /// Read plus written.
    pub fn total_bytes(self) -> u64 {
        self.read_bytes + self.written_bytes
    }
}

impl std::ops::Add for Traffic {
    type Output = Traffic;
    fn add(self, other: Traffic) -> Traffic {
        Traffic {
            read_bytes: self.read_bytes + other.read_bytes,
            written_bytes: self.written_bytes + other.written_bytes,
        }
    }
}

impl std::iter::Sum for Traffic {
    fn sum<I: Iterator<Item = Traffic>>(iter: I) -> Traffic {
        iter.fold(Traffic::default(), |a, b| a + b)
    }
}

/// One prepared dispatch: pipeline, bind group (with its uniform buffer), grid size and
/// the memory it moves. Built once; [`Dispatch::record`] costs three commands in a compute
/// pass.
pub struct Dispatch {
    pub name: &'static str,
    pipeline: Arc<CachedPipeline>,
    bind_group: wgpu::BindGroup,
    workgroups: [u32; 3],
    traffic: Traffic,
    /// Floating-point operations of the products (2 · m · n · k a matmul); 0 for kernels
    /// whose cost is their traffic.
    flops: f64,
    /// What the dispatch computes in its graph, where its kernel's name does not say (the
    /// tensor a matmul writes, e.g. "dencoder.0.weight"); empty elsewhere.
    role: String,
    /// Whether the kernel reads the step state (a [`Slot::Step`] binding).
    reads_step: bool,
}

impl Dispatch {
    /// Appends this dispatch to an open compute pass; a kernel that reads the step state
    /// reads the first state of the buffer bound to it.
    pub fn record(&self, pass: &mut wgpu::ComputePass) {
        self.record_at_state(pass, 0);
    }

    /// Appends this dispatch, reading the step state `state_offset` bytes into the buffer
    /// bound to its [`Slot::Step`] ([`step::StepStates::offset`]); other kernels ignore it.
    pub fn record_at_state(&self, pass: &mut wgpu::ComputePass, state_offset: u32) {
        pass.set_pipeline(&self.pipeline.pipeline);
        if self.reads_step {
            pass.set_bind_group(0, &self.bind_group, &[state_offset]);
        } else {
            pass.set_bind_group(0, &self.bind_group, &[]);
        }
        let [x, y, z] = self.workgroups;
        pass.dispatch_workgroups(x, y, z);
    }

    /// The grid size, in workgroups.
    pub fn workgroups(&self) -> [u32; 3] {
        self.workgroups
    }

    /// The memory this dispatch moves (see [`Traffic`]).
    pub fn traffic(&self) -> Traffic {
        self.traffic
    }

    /// The FLOPs of its products (matmuls; 0 elsewhere).
    pub fn flops(&self) -> f64 {
        self.flops
    }

    /// The same dispatch, counting `flops` (the matmul host functions set it).
    pub fn with_flops(self, flops: f64) -> Dispatch {
        Dispatch { flops, ..self }
    }

    /// Its role in a graph (see `role`).
    pub fn role(&self) -> &str {
        &self.role
    }

    /// The same dispatch with a role (the graph executor names its matmuls').
    pub fn with_role(self, role: impl Into<String>) -> Dispatch {
        Dispatch {
            role: role.into(),
            ..self
        }
    }
}

/// Builds a dispatch: the pipeline for `kernel` with `constants`, a uniform buffer holding
/// `uniform` (for a kernel whose first slot is a uniform), and `buffers` bound to the
/// remaining slots in order; `traffic` is what the kernel moves at these shapes.
pub fn prepare(
    ctx: &GpuContext,
    kernel: &Kernel,
    constants: &[(&str, f64)],
    uniform: Option<&[u8]>,
    buffers: &[&GpuBuffer],
    workgroups: [u32; 3],
    traffic: Traffic,
) -> Result<Dispatch> {
    let storage_slots = kernel
        .slots
        .iter()
        .filter(|(_, s)| *s != Slot::Uniform)
        .count();
    if storage_slots != buffers.len() || (uniform.is_some() != (storage_slots < kernel.slots.len()))
    {
        return Err(Error::InvalidArgument(format!(
            "{}: {} buffers given for {} bindings",
            kernel.entry,
            buffers.len(),
            kernel.slots.len()
        )));
    }
    check_grid(ctx, kernel.entry, workgroups)?;
    check_no_aliasing(kernel, buffers)?;
    // Read once: the pipeline's layout and the buffer must agree.
    let in_storage = ctx.params_in_storage();
    let pipeline = pipeline(ctx, kernel, constants, in_storage)?;
    let params = uniform.map(|bytes| params_buffer(ctx, kernel.entry, bytes, in_storage));
    let mut storage = buffers.iter();
    let entries: Vec<wgpu::BindGroupEntry> = kernel
        .slots
        .iter()
        .map(|&(binding, slot)| {
            let resource = match slot {
                Slot::Uniform => params
                    .as_ref()
                    .expect("uniform checked above")
                    .as_entire_binding(),
                _ => storage.next().expect("count checked above").binding(),
            };
            wgpu::BindGroupEntry { binding, resource }
        })
        .collect();
    let bind_group = ctx.scoped(kernel.entry, || {
        ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(kernel.entry),
            layout: &pipeline.layout,
            entries: &entries,
        })
    })?;
    Ok(Dispatch {
        name: kernel.entry,
        pipeline,
        bind_group,
        workgroups,
        traffic,
        flops: 0.0,
        role: String::new(),
        reads_step: kernel.slots.iter().any(|&(_, s)| s == Slot::Step),
    })
}

/// A buffer written by a dispatch may not be bound anywhere else in it (wgpu forbids it, and
/// would report it only at submit).
fn check_no_aliasing(kernel: &Kernel, buffers: &[&GpuBuffer]) -> Result<()> {
    let storage: Vec<_> = kernel
        .slots
        .iter()
        .filter(|(_, s)| *s != Slot::Uniform)
        .collect();
    for (i, (binding_i, slot_i)) in storage.iter().enumerate() {
        for (j, (binding_j, slot_j)) in storage.iter().enumerate().skip(i + 1) {
            let written = *slot_i == Slot::ReadWrite || *slot_j == Slot::ReadWrite;
            // Two written ranges of one buffer may share a dispatch if they are disjoint (a
            // weight's gradient and its bias's in the flat gradient buffer); a read range
            // may not share a buffer with a written one (wgpu's usage rule).
            let both_written = *slot_i == Slot::ReadWrite && *slot_j == Slot::ReadWrite;
            let (bi, bj) = (buffers[i], buffers[j]);
            let end = |b: &GpuBuffer| b.offset + 4 * b.len as u64;
            let disjoint = end(bi) <= bj.offset || end(bj) <= bi.offset;
            if written && bi.buffer == bj.buffer && !(both_written && disjoint) {
                return Err(Error::InvalidArgument(format!(
                    "{}: one buffer is bound to binding {binding_i} and binding {binding_j}, and \
                     one of them is written; outputs must not alias other arguments",
                    kernel.entry
                )));
            }
        }
    }
    Ok(())
}

/// A uniform buffer holding `bytes`, padded to a multiple of 16 bytes.
/// The `params` binding's buffer: a uniform buffer, or a read-only storage one
/// (GpuContext::params_in_storage).
fn params_buffer(ctx: &GpuContext, label: &str, bytes: &[u8], in_storage: bool) -> wgpu::Buffer {
    let mut padded = bytes.to_vec();
    padded.resize(bytes.len().div_ceil(16).max(1) * 16, 0);
    let usage = if in_storage {
        wgpu::BufferUsages::STORAGE
    } else {
        wgpu::BufferUsages::UNIFORM
    };
    let buffer = ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: padded.len() as u64,
        usage: usage | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    ctx.queue.write_buffer(&buffer, 0, &padded);
    buffer
}

fn check_grid(ctx: &GpuContext, op: &str, workgroups: [u32; 3]) -> Result<()> {
    let max = ctx.limits.max_compute_workgroups_per_dimension;
    if workgroups.iter().any(|&w| w > max) {
        return Err(Error::InvalidArgument(format!(
            "{op}: grid {workgroups:?} exceeds the adapter's {max} workgroups per dimension"
        )));
    }
    Ok(())
}

/// Threads per row of the row-reduction kernels (one workgroup a row, a workgroup sum): 256
/// on GPUs, where they hide memory latency, and 32 on CPU adapters, where lavapipe runs a
/// workgroup's invocations as SIMD lanes in turn and each level of the sum's tree costs a
/// barrier (bce_forward_backward at 128×784: 1.5 ms at 32 threads, 4.1 ms at 256).
pub fn row_reduction_threads(ctx: &GpuContext) -> u32 {
    if ctx.info.device_type == wgpu::DeviceType::Cpu {
        32
    } else {
        WORKGROUP_SIZE
    }
}

/// Threads of a workgroup that takes one row of `elements`: the row's width rounded up to a
/// power of two, from 32 to the adapter's row-reduction size (a workgroup mostly idle on a
/// narrow row costs barriers for nothing).
pub fn threads_for_row(ctx: &GpuContext, elements: usize) -> u32 {
    let most = row_reduction_threads(ctx);
    (elements.next_power_of_two() as u32).clamp(32.min(most), most)
}

/// The override constants that size a row-reduction kernel's workgroup for this adapter.
pub fn row_reduction_constants(ctx: &GpuContext) -> [(&'static str, f64); 1] {
    [("WORKGROUP_SIZE", f64::from(row_reduction_threads(ctx)))]
}

/// Whether `ctx`'s device binds a kernel of `storage` storage buffers besides its params,
/// which are one more where they are a storage buffer (GpuContext::params_in_storage, CPU
/// adapters). WebGPU's default limit, and a host's device requested with default limits,
/// has 8 a stage.
pub fn binds_storage_buffers(ctx: &GpuContext, storage: u32) -> bool {
    ctx.limits.max_storage_buffers_per_shader_stage >= storage + u32::from(ctx.params_in_storage())
}

/// Threads per workgroup of the element-wise and row kernels (`WORKGROUP_SIZE` in
/// shaders/lib/grid.wgsl).
pub const WORKGROUP_SIZE: u32 = 256;

/// A grid of `groups` workgroups laid out over x then y, as `flat_group` in
/// shaders/lib/grid.wgsl reads it back.
pub fn grid_for_groups(ctx: &GpuContext, groups: u64) -> Result<[u32; 3]> {
    let max = u64::from(ctx.limits.max_compute_workgroups_per_dimension);
    let x = groups.clamp(1, max);
    let y = groups.div_ceil(x);
    if y > max {
        return Err(Error::InvalidArgument(format!(
            "{groups} workgroups exceed the adapter's grid"
        )));
    }
    Ok([x as u32, y as u32, 1])
}

/// A grid with one thread per element for `n` elements.
pub fn grid_for_elements(ctx: &GpuContext, n: usize) -> Result<[u32; 3]> {
    grid_for_groups(ctx, (n as u64).div_ceil(u64::from(WORKGROUP_SIZE)))
}

/// An error unless `repeat` ≥ 1 divides `rows` and `buffer` holds rows / repeat rows of
/// `cols`: a tensor each of whose rows stands for `repeat` consecutive rows of another (an
/// IWAE's data rows or μ | logvar, read in place of their K repeats).
pub fn check_repeated(
    op: &'static str,
    name: &str,
    buffer: &GpuBuffer,
    (rows, cols): (usize, usize),
    repeat: usize,
) -> Result<()> {
    if repeat == 0 || !rows.is_multiple_of(repeat) {
        return Err(shape_error(
            op,
            format!("{name} repeated {repeat} times for {rows} rows: the rows must be a whole number of repeats"),
        ));
    }
    check_len(op, name, buffer, rows / repeat * cols)
}

/// Checks that `buffer` holds at least `expected` elements.
pub fn check_len(op: &'static str, name: &str, buffer: &GpuBuffer, expected: usize) -> Result<()> {
    if buffer.len < expected {
        return Err(shape_error(
            op,
            format!(
                "{name} holds {} elements, the shape needs {expected}",
                buffer.len
            ),
        ));
    }
    Ok(())
}

/// Records dispatches into one compute pass, submits and waits.
pub fn run(ctx: &GpuContext, label: &str, dispatches: &[&Dispatch]) -> Result<()> {
    run_recorded(ctx, label, &|pass| {
        dispatches.iter().for_each(|d| d.record(pass))
    })
}

/// Lets `record` fill one compute pass, submits and waits.
pub fn run_recorded(
    ctx: &GpuContext,
    label: &str,
    record: &dyn Fn(&mut wgpu::ComputePass),
) -> Result<()> {
    let mut encoder = ctx
        .device
        .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(label) });
    {
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some(label),
            timestamp_writes: None,
        });
        record(&mut pass);
    }
    ctx.submit_and_wait(label, encoder.finish())
}

/// Views a `#[repr(C)]` uniform struct as bytes.
pub fn bytes_of<T: bytemuck::Pod>(value: &T) -> &[u8] {
    bytemuck::bytes_of(value)
}
