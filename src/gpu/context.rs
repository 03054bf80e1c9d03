//! The GPU context: instance, adapter and device, with the chosen backend and adapter, the
//! features latent cares about, and the adapter's own limits. Every wgpu error is turned
//! into a Rust [`Error`]: error scopes around creation and submission, an uncaptured-error
//! handler for the rest, a device-lost callback, and waits that time out instead of hanging.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::kernels::autotune::ShapeTuning;
use crate::kernels::matmul::{MatmulChoice, MatmulShape, MatmulVariant};
use crate::kernels::matmul_grouped_tn::{GroupKey, WeightGrads, WeightGradsPolicy};
use crate::kernels::PipelineCache;

/// How long a submit-and-wait may take before it is reported as a timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// Which graphics API to run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Backend {
    /// Every backend compiled in; the best adapter wins.
    #[default]
    Auto,
    Vulkan,
    Metal,
    Dx12,
    Gl,
}

impl Backend {
    /// The wgpu backend set this choice stands for.
    pub fn backends(self) -> wgpu::Backends {
        match self {
            Backend::Auto => {
                wgpu::Backends::VULKAN
                    | wgpu::Backends::METAL
                    | wgpu::Backends::DX12
                    | wgpu::Backends::GL
            }
            Backend::Vulkan => wgpu::Backends::VULKAN,
            Backend::Metal => wgpu::Backends::METAL,
            Backend::Dx12 => wgpu::Backends::DX12,
            Backend::Gl => wgpu::Backends::GL,
        }
    }
}

impl FromStr for Backend {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(Backend::Auto),
            "vulkan" | "vk" => Ok(Backend::Vulkan),
            "metal" | "mtl" => Ok(Backend::Metal),
            "dx12" | "d3d12" => Ok(Backend::Dx12),
            "gl" | "gles" | "opengl" => Ok(Backend::Gl),
            other => Err(Error::InvalidArgument(format!(
                "unknown backend {other:?}: expected auto, vulkan, metal, dx12 or gl"
            ))),
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Backend::Auto => "auto",
            Backend::Vulkan => "vulkan",
            Backend::Metal => "metal",
            Backend::Dx12 => "dx12",
            Backend::Gl => "gl",
        };
        f.write_str(name)
    }
}

/// What the caller asks for when latent creates the device itself.
#[derive(Clone, Debug, Default)]
pub struct GpuOptions {
    pub backend: Backend,
    /// An adapter index (as `latent info` lists them) or a case-insensitive part of its name.
    pub adapter: Option<String>,
    /// Also request wgpu's experimental EXPERIMENTAL_COOPERATIVE_MATRIX where the adapter
    /// has it, for the opt-in coop-f16 matmul (`--matmul coop-f16`). Off by default: the
    /// feature is experimental in wgpu 30, so only the runs that use it turn it on.
    pub cooperative_matrix: bool,
    /// Request at most this many storage buffers a shader stage (the adapter's limit when
    /// it has fewer; None: the adapter's). 8 is WebGPU's default, what a portable build or a
    /// host's device requested with default limits gets: the kernels that bind more (the
    /// IWAE's bound with its loss, the grouped weight gradients) then give way to the forms
    /// that bind fewer, so `latent bench` can time both on one GPU.
    pub max_storage_buffers: Option<u32>,
}

/// The storage buffers a stage that every kernel a training step needs keeps to: WebGPU's
/// default limit, what a host's device requested with default limits has.
const STEP_STORAGE_BUFFERS: u32 = 8;

/// Whether a device of `limits` can take the kernels' params in a storage buffer: that adds
/// one to each kernel's storage buffers, so only where a kernel of
/// [`STEP_STORAGE_BUFFERS`] still fits.
fn takes_params_in_storage(limits: &wgpu::Limits) -> bool {
    limits.max_storage_buffers_per_shader_stage > STEP_STORAGE_BUFFERS
}

impl GpuOptions {
    /// Options from LATENT_BACKEND and LATENT_ADAPTER (unset: auto, the best adapter), with
    /// cooperative matrices requested when LATENT_MATMUL is coop-f16 and
    /// LATENT_MAX_STORAGE_BUFFERS (unset: the adapter's).
    pub fn from_env() -> Result<Self> {
        let backend = match std::env::var("LATENT_BACKEND") {
            Ok(name) if !name.is_empty() => name.parse()?,
            _ => Backend::Auto,
        };
        let adapter = std::env::var("LATENT_ADAPTER")
            .ok()
            .filter(|a| !a.is_empty());
        let cooperative_matrix = std::env::var("LATENT_MATMUL").is_ok_and(|m| {
            m.parse::<crate::kernels::matmul::MatmulVariant>()
                .is_ok_and(|v| v == crate::kernels::matmul::MatmulVariant::CoopF16)
        });
        let max_storage_buffers = match std::env::var("LATENT_MAX_STORAGE_BUFFERS") {
            Ok(n) if !n.is_empty() => Some(n.parse().map_err(|_| {
                Error::InvalidArgument(format!(
                    "LATENT_MAX_STORAGE_BUFFERS={n}: expected a whole number of storage buffers"
                ))
            })?),
            _ => None,
        };
        Ok(GpuOptions {
            backend,
            adapter,
            cooperative_matrix,
            max_storage_buffers,
        })
    }
}

/// The optional hardware features latent detects, reported by `latent info`.
#[derive(Clone, Debug, Default)]
pub struct FeatureReport {
    pub shader_f16: bool,
    pub subgroups: bool,
    pub timestamp_query: bool,
    pub timestamp_query_inside_passes: bool,
    /// Cooperative matrix configurations the adapter offers, as "MxNxK ab->cr".
    pub cooperative_matrix: Vec<String>,
}

impl FeatureReport {
    /// Reads the features of an adapter.
    pub fn of_adapter(adapter: &wgpu::Adapter) -> Self {
        let f = adapter.features();
        let configurations = if f.contains(wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX) {
            adapter
                .cooperative_matrix_properties()
                .iter()
                .map(|p| {
                    format!(
                        "{}x{}x{} {:?}->{:?}",
                        p.m_size, p.n_size, p.k_size, p.ab_type, p.cr_type
                    )
                })
                .collect()
        } else {
            Vec::new()
        };
        Self::from_features(f, configurations)
    }

    /// What a device was created with; the adapter's cooperative-matrix `configurations`
    /// count only where the device has EXPERIMENTAL_COOPERATIVE_MATRIX.
    fn of_device(device: &wgpu::Device, configurations: Vec<String>) -> Self {
        let f = device.features();
        let configurations = if f.contains(wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX) {
            configurations
        } else {
            Vec::new()
        };
        Self::from_features(f, configurations)
    }

    fn from_features(f: wgpu::Features, cooperative_matrix: Vec<String>) -> Self {
        FeatureReport {
            shader_f16: f.contains(wgpu::Features::SHADER_F16),
            subgroups: f.contains(wgpu::Features::SUBGROUP),
            timestamp_query: f.contains(wgpu::Features::TIMESTAMP_QUERY),
            timestamp_query_inside_passes: f
                .contains(wgpu::Features::TIMESTAMP_QUERY_INSIDE_PASSES),
            cooperative_matrix,
        }
    }
}

/// One adapter as `latent info` shows it.
#[derive(Clone, Debug)]
pub struct AdapterSummary {
    pub index: usize,
    pub info: wgpu::AdapterInfo,
    pub features: FeatureReport,
    pub limits: wgpu::Limits,
}

fn new_instance(backend: Backend) -> wgpu::Instance {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    desc.backends = backend.backends();
    wgpu::Instance::new(desc)
}

/// Discrete GPUs first, then integrated, virtual, software; Vulkan/Metal/DX12 before GL.
fn adapter_rank(info: &wgpu::AdapterInfo) -> (u8, u8) {
    let device = match info.device_type {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    };
    let api = u8::from(info.backend == wgpu::Backend::Gl);
    (device, api)
}

/// Every adapter for the backend, best first (the order `--adapter N` indexes).
fn sorted_adapters(instance: &wgpu::Instance, backend: Backend) -> Vec<wgpu::Adapter> {
    let mut adapters = pollster::block_on(instance.enumerate_adapters(backend.backends()));
    adapters.sort_by_key(|a| adapter_rank(&a.get_info()));
    adapters
}

/// The adapters `GpuContext::new` chooses from: for `auto`, Vulkan, Metal and DX12 first,
/// and GL only when none of them has an adapter (GL is slower to start and noisier).
fn candidate_adapters(backend: Backend) -> Vec<wgpu::Adapter> {
    if backend != Backend::Auto {
        return sorted_adapters(&new_instance(backend), backend);
    }
    let primary = Backend::Auto.backends() - wgpu::Backends::GL;
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    desc.backends = primary;
    let instance = wgpu::Instance::new(desc);
    let mut adapters = pollster::block_on(instance.enumerate_adapters(primary));
    if adapters.is_empty() {
        return sorted_adapters(&new_instance(Backend::Gl), Backend::Gl);
    }
    adapters.sort_by_key(|a| adapter_rank(&a.get_info()));
    adapters
}

/// Lists the adapters of a backend with their features and limits.
pub fn list_adapters(backend: Backend) -> Vec<AdapterSummary> {
    let instance = new_instance(backend);
    sorted_adapters(&instance, backend)
        .iter()
        .enumerate()
        .map(|(index, a)| AdapterSummary {
            index,
            info: a.get_info(),
            features: FeatureReport::of_adapter(a),
            limits: a.limits(),
        })
        .collect()
}

fn no_adapter_hint() -> String {
    "Install a Vulkan driver (on Debian/Ubuntu without a GPU: `apt-get install -y \
     mesa-vulkan-drivers libvulkan1` for lavapipe), or try --backend gl."
        .to_string()
}

fn pick_adapter(adapters: Vec<wgpu::Adapter>, options: &GpuOptions) -> Result<wgpu::Adapter> {
    if adapters.is_empty() {
        return Err(Error::NoAdapter {
            backend: options.backend.to_string(),
            hint: no_adapter_hint(),
        });
    }
    let Some(wanted) = options.adapter.as_deref() else {
        return Ok(adapters.into_iter().next().expect("checked non-empty"));
    };
    let available = adapters
        .iter()
        .enumerate()
        .map(|(i, a)| format!("[{i}] {} ({:?})", a.get_info().name, a.get_info().backend))
        .collect::<Vec<_>>()
        .join(", ");
    let position = match wanted.parse::<usize>() {
        Ok(index) => (index < adapters.len()).then_some(index),
        Err(_) => {
            let needle = wanted.to_lowercase();
            adapters
                .iter()
                .position(|a| a.get_info().name.to_lowercase().contains(&needle))
        }
    };
    match position {
        Some(i) => Ok(adapters.into_iter().nth(i).expect("index checked")),
        None => Err(Error::AdapterNotFound {
            wanted: wanted.to_string(),
            available,
        }),
    }
}

/// Errors wgpu reported outside any error scope, and the device-lost message if any.
#[derive(Default)]
struct ErrorSink {
    uncaptured: Vec<String>,
    lost: Option<String>,
}

/// A device and queue with latent's error handling, pipeline cache and limits.
pub struct GpuContext {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
    pub features: FeatureReport,
    pub limits: wgpu::Limits,
    /// How long a submit-and-wait may take before it becomes [`Error::Timeout`].
    pub timeout: Duration,
    sink: Arc<Mutex<ErrorSink>>,
    pub(crate) pipelines: PipelineCache,
    /// A 16-byte storage buffer bound where an optional input is absent (matmul without bias).
    pub(crate) placeholder: crate::gpu::GpuBuffer,
    /// Another, bound where an optional output is absent (a binding both read and written
    /// in one dispatch would conflict with `placeholder`).
    pub(crate) placeholder_out: crate::gpu::GpuBuffer,
    /// The matmul variant per shape class (and per tuned shape) that
    /// `kernels::matmul::matmul` prepares.
    matmul_choice: RwLock<MatmulChoice>,
    /// Per-shape tuning of new matmul shapes, when on (kernels::autotune).
    shape_tuning: Mutex<Option<ShapeTuning>>,
    /// How training steps prepared from now on compute their weight gradients.
    weight_grads_policy: RwLock<WeightGradsPolicy>,
    /// Whether kernels read their `params` from a storage buffer instead of a uniform one
    /// (see [`GpuContext::params_in_storage`]).
    params_in_storage: AtomicBool,
    /// Whether kernels are built with wgpu's runtime checks (see
    /// [`GpuContext::runtime_checks`]).
    runtime_checks: AtomicBool,
}

impl GpuContext {
    /// Creates an instance, picks the adapter and opens a device with the adapter's own
    /// limits and the optional features it has (f16, subgroups, timestamp queries; and
    /// cooperative matrices when `options.cooperative_matrix`).
    pub fn new(options: &GpuOptions) -> Result<Self> {
        if options.cooperative_matrix {
            // SAFETY: wgpu marks its experimental features unsafe because their validation is
            // incomplete. The one latent enables, cooperative matrices, only runs
            // shaders/matmul_coop_f16.wgsl, whose loads and stores stay inside workgroup
            // arrays of the sizes it declares; and only runs that ask for it turn it on.
            let experimental = unsafe { wgpu::ExperimentalFeatures::enabled() };
            return Self::with_features(
                options,
                wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX,
                experimental,
            );
        }
        Self::with_features(
            options,
            wgpu::Features::empty(),
            wgpu::ExperimentalFeatures::disabled(),
        )
    }

    /// [`GpuContext::new`], also requesting `extra` features where the adapter has them
    /// (check `device.features()` for what the device got). Experimental features (e.g.
    /// EXPERIMENTAL_COOPERATIVE_MATRIX, for dev/matmul_coop_f16.wgsl) need the caller's
    /// `unsafe { wgpu::ExperimentalFeatures::enabled() }` token as `experimental`.
    pub fn with_features(
        options: &GpuOptions,
        extra: wgpu::Features,
        experimental: wgpu::ExperimentalFeatures,
    ) -> Result<Self> {
        let adapter = pick_adapter(candidate_adapters(options.backend), options)?;
        let wanted = wgpu::Features::SHADER_F16
            | wgpu::Features::SUBGROUP
            | wgpu::Features::TIMESTAMP_QUERY
            | wgpu::Features::TIMESTAMP_QUERY_INSIDE_PASSES
            | extra;
        let mut required_limits = adapter.limits();
        if let Some(most) = options.max_storage_buffers {
            let stage = &mut required_limits.max_storage_buffers_per_shader_stage;
            *stage = (*stage).min(most);
        }
        let desc = wgpu::DeviceDescriptor {
            label: Some("latent"),
            required_features: adapter.features() & wanted,
            required_limits,
            experimental_features: experimental,
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        };
        let (device, queue) = pollster::block_on(adapter.request_device(&desc)).map_err(|e| {
            Error::RequestDevice {
                adapter: adapter.get_info().name,
                message: e.to_string(),
            }
        })?;
        let mut features = FeatureReport::of_adapter(&adapter);
        // Report what the device has, not only what the adapter offers.
        features.timestamp_query &= device.features().contains(wgpu::Features::TIMESTAMP_QUERY);
        Ok(Self::assemble(device, queue, adapter.get_info(), features))
    }

    /// Wraps a device and queue that the host application already owns. latent installs its
    /// uncaptured-error handler and device-lost callback on that device. Without the adapter
    /// latent cannot list its cooperative-matrix configurations, so coop-f16 stays off: use
    /// [`GpuContext::from_adapter_and_device`] for it.
    pub fn from_device(device: wgpu::Device, queue: wgpu::Queue, info: wgpu::AdapterInfo) -> Self {
        let features = FeatureReport::of_device(&device, Vec::new());
        Self::assemble(device, queue, info, features)
    }

    /// [`GpuContext::from_device`] with the adapter the device came from, whose
    /// cooperative-matrix configurations it reads: a device the host requested with
    /// EXPERIMENTAL_COOPERATIVE_MATRIX (and `ExperimentalFeatures::enabled()`) then runs the
    /// coop-f16 matmul too.
    pub fn from_adapter_and_device(
        adapter: &wgpu::Adapter,
        device: wgpu::Device,
        queue: wgpu::Queue,
    ) -> Self {
        let configurations = FeatureReport::of_adapter(adapter).cooperative_matrix;
        let features = FeatureReport::of_device(&device, configurations);
        Self::assemble(device, queue, adapter.get_info(), features)
    }

    fn assemble(
        device: wgpu::Device,
        queue: wgpu::Queue,
        info: wgpu::AdapterInfo,
        features: FeatureReport,
    ) -> Self {
        let sink = Arc::new(Mutex::new(ErrorSink::default()));
        let handler_sink = sink.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            if let Ok(mut s) = handler_sink.lock() {
                s.uncaptured.push(e.to_string());
            }
        }));
        let lost_sink = sink.clone();
        device.set_device_lost_callback(move |reason, message| {
            if let Ok(mut s) = lost_sink.lock() {
                s.lost = Some(format!("{reason:?}: {message}"));
            }
        });
        let placeholder_buffer = |label| crate::gpu::GpuBuffer {
            buffer: device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: 16,
                usage: wgpu::BufferUsages::STORAGE,
                mapped_at_creation: false,
            }),
            len: 4,
            offset: 0,
        };
        let placeholder = placeholder_buffer("placeholder");
        let placeholder_out = placeholder_buffer("placeholder for an absent output");
        let limits = device.limits();
        let matmul_choice = RwLock::new(MatmulChoice::default_for(&info, &features));
        let params_in_storage =
            info.device_type == wgpu::DeviceType::Cpu && takes_params_in_storage(&limits);
        GpuContext {
            device,
            queue,
            info,
            features,
            limits,
            timeout: DEFAULT_TIMEOUT,
            sink,
            pipelines: PipelineCache::default(),
            placeholder,
            placeholder_out,
            matmul_choice,
            shape_tuning: Mutex::new(None),
            weight_grads_policy: RwLock::new(WeightGradsPolicy::Auto),
            params_in_storage: AtomicBool::new(params_in_storage),
            runtime_checks: AtomicBool::new(true),
        }
    }

    /// The matmul variants dispatches prepared from now on use: the adapter type's default
    /// until [`GpuContext::set_matmul_choice`] (see kernels::autotune).
    pub fn matmul_choice(&self) -> MatmulChoice {
        match self.matmul_choice.read() {
            Ok(choice) => choice.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Sets the matmul variants for dispatches prepared after this call (executors prepare
    /// theirs when they are built).
    pub fn set_matmul_choice(&self, choice: MatmulChoice) {
        match self.matmul_choice.write() {
            Ok(mut current) => *current = choice,
            Err(poisoned) => *poisoned.into_inner() = choice,
        }
    }

    /// Turns per-shape tuning on (Some) or off: with it on, a matmul shape the choice has
    /// not seen is tuned when a dispatch is first prepared for it (kernels::autotune).
    pub fn set_shape_tuning(&self, tuning: Option<ShapeTuning>) {
        *lock_or_recover(&self.shape_tuning) = tuning;
    }

    /// The matmul variant for `shape`: the one tuned for it, else, with per-shape tuning on,
    /// the winner of tuning it now (remembered, and cached on disk), else its class's.
    pub fn matmul_variant(&self, shape: &MatmulShape) -> Result<MatmulVariant> {
        let mut tuning = lock_or_recover(&self.shape_tuning);
        match tuning.as_mut() {
            Some(tuning) => tuning.variant_for(self, shape),
            None => Ok(self.matmul_choice().for_shape(shape)),
        }
    }

    /// Sets how training steps prepared after this call compute their weight gradients
    /// (auto until then).
    pub fn set_weight_grads_policy(&self, policy: WeightGradsPolicy) {
        match self.weight_grads_policy.write() {
            Ok(mut current) => *current = policy,
            Err(poisoned) => *poisoned.into_inner() = policy,
        }
    }

    /// How training steps prepared from now on compute their weight gradients.
    pub fn weight_grads_policy(&self) -> WeightGradsPolicy {
        match self.weight_grads_policy.read() {
            Ok(policy) => *policy,
            Err(poisoned) => *poisoned.into_inner(),
        }
    }

    /// The weight-gradient form of the layers of `key` (one grouped dispatch's worth), by
    /// the policy: forced, or with auto the form tuned for them (timed now if per-shape
    /// tuning is on and they are new, see kernels::autotune), else separate. Layers that
    /// the grouped kernel cannot take (`groupable` false) are always separate.
    pub fn weight_grads(&self, key: &GroupKey, groupable: bool) -> Result<WeightGrads> {
        if !groupable {
            return Ok(WeightGrads::Separate);
        }
        if let WeightGradsPolicy::Force(form) = self.weight_grads_policy() {
            return Ok(form);
        }
        let mut tuning = lock_or_recover(&self.shape_tuning);
        match tuning.as_mut() {
            Some(tuning) => tuning.weight_grads_for(self, key),
            None => Ok(self
                .matmul_choice()
                .weight_grads
                .get(key)
                .copied()
                .unwrap_or(WeightGrads::Separate)),
        }
    }

    /// What per-shape tuning did since the last call: a line per shape tuned, and any
    /// warning about its cache (for the caller to print).
    pub fn take_matmul_notes(&self) -> Vec<String> {
        lock_or_recover(&self.shape_tuning)
            .as_mut()
            .map(|tuning| std::mem::take(&mut tuning.notes))
            .unwrap_or_default()
    }

    /// Whether the kernels' `params` (binding 0) are a read-only storage buffer rather than a
    /// uniform buffer: on CPU adapters that bind more than 8 storage buffers a stage, from
    /// creation. Lavapipe specializes a shader on the
    /// values of the uniforms its loops and branches read, at its first dispatch, and keeps
    /// the variant when it is much smaller; for a matmul whose first shape had a power-of-two
    /// M (64×64×128 TN) every later dispatch of that pipeline ran 7× slower and a small VAE
    /// trained 20× slower (BENCHMARKS.md, session 7). Storage buffers are not specialized on.
    /// GPUs keep the uniform buffer, their fast path for constants.
    pub fn params_in_storage(&self) -> bool {
        self.params_in_storage.load(Ordering::Relaxed)
    }

    /// Binds the kernels' `params` as a storage buffer (true) or a uniform buffer (false)
    /// for the dispatches prepared from now on (the tests run the uniform form, the one GPUs
    /// use, on CPU adapters too). An error, changing nothing, for the storage form on a
    /// device that binds at most 8 storage buffers a stage: the kernels of 8 would not bind.
    pub fn set_params_in_storage(&self, on: bool) -> Result<()> {
        if on && !takes_params_in_storage(&self.limits) {
            return Err(Error::InvalidArgument(format!(
                "params in a storage buffer need a device that binds more than {STEP_STORAGE_BUFFERS} storage buffers a stage; this one binds {}",
                self.limits.max_storage_buffers_per_shader_stage
            )));
        }
        self.params_in_storage.store(on, Ordering::Relaxed);
        Ok(())
    }

    /// Whether the kernels prepared from now on keep wgpu's runtime checks (the default):
    /// naga clamps each index into a workgroup or private array and bounds every loop with
    /// a counter of its own. Off, see [`GpuContext::set_runtime_checks`].
    pub fn runtime_checks(&self) -> bool {
        self.runtime_checks.load(Ordering::Relaxed)
    }

    /// Builds the kernels prepared from now on with (true) or without (false) wgpu's
    /// runtime checks (`wgpu::ShaderRuntimeChecks::unchecked()`: no index clamps, no loop
    /// counters; buffer accesses keep whatever bounds the driver itself enforces, as Vulkan's
    /// robust buffer access). Pipelines built before keep theirs. Off, a kernel's inner
    /// loop runs fewer instructions (`latent bench` with and without `--unchecked-kernels`
    /// says how much that buys on an adapter); the autotune keeps a cache of its own for it.
    ///
    /// # Safety
    ///
    /// latent's kernels keep every access inside its arrays (edge tiles are guarded, and
    /// every kernel is checked against its CPU twin at odd shapes) and every loop finite,
    /// for the shapes and buffers their host code accepts. Turning the checks off trusts
    /// that: an access that a bug sent out of an array would no longer be clamped, and
    /// wgpu's guarantee that a shader stays in bounds no longer holds.
    pub unsafe fn set_runtime_checks(&self, on: bool) {
        self.runtime_checks.store(on, Ordering::Relaxed);
    }

    /// The pipelines built on this device so far.
    pub fn pipelines(&self) -> &PipelineCache {
        &self.pipelines
    }

    /// A one-line description: adapter name, backend, driver.
    pub fn describe(&self) -> String {
        format!(
            "{} ({:?}, {:?}, driver {} {})",
            self.info.name,
            self.info.backend,
            self.info.device_type,
            self.info.driver,
            self.info.driver_info
        )
    }

    /// Reports device loss and errors that escaped every error scope.
    pub fn check_errors(&self, op: &str) -> Result<()> {
        let mut sink = self.sink.lock().map_err(|_| Error::Gpu {
            op: op.to_string(),
            message: "error sink poisoned".into(),
        })?;
        if let Some(lost) = &sink.lost {
            return Err(Error::DeviceLost(lost.clone()));
        }
        if !sink.uncaptured.is_empty() {
            let message = sink.uncaptured.drain(..).collect::<Vec<_>>().join("; ");
            return Err(Error::Gpu {
                op: op.to_string(),
                message,
            });
        }
        Ok(())
    }

    /// Runs `f` inside validation and out-of-memory error scopes; any error they catch
    /// becomes [`Error::Gpu`] naming `op`.
    pub fn scoped<T>(&self, op: &str, f: impl FnOnce() -> T) -> Result<T> {
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let value = f();
        let validation_error = pollster::block_on(validation.pop());
        let oom_error = pollster::block_on(oom.pop());
        if let Some(e) = validation_error.or(oom_error) {
            return Err(Error::Gpu {
                op: op.to_string(),
                message: e.to_string(),
            });
        }
        self.check_errors(op)?;
        Ok(value)
    }

    /// Submits a command buffer and waits for it, with the context's timeout.
    pub fn submit_and_wait(&self, op: &str, commands: wgpu::CommandBuffer) -> Result<()> {
        let index = self.scoped(op, || self.queue.submit([commands]))?;
        self.wait(op, Some(index))
    }

    /// Waits for a submission (or all work) to finish, with the context's timeout.
    pub fn wait(&self, op: &str, index: Option<wgpu::SubmissionIndex>) -> Result<()> {
        let poll = wgpu::PollType::Wait {
            submission_index: index,
            timeout: Some(self.timeout),
        };
        match self.device.poll(poll) {
            Ok(_) => self.check_errors(op),
            Err(wgpu::PollError::Timeout) => Err(Error::Timeout {
                what: op.to_string(),
                timeout: self.timeout,
            }),
            Err(e) => {
                self.check_errors(op)?;
                Err(Error::Gpu {
                    op: op.to_string(),
                    message: e.to_string(),
                })
            }
        }
    }
}

/// The guarded value, also after a thread panicked while holding the lock (the values kept
/// this way stay consistent between statements).
fn lock_or_recover<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}
