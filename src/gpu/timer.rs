//! Timing GPU work: timestamp queries around one compute pass where the device has them,
//! else the wall clock around submit-and-wait. Used by `latent validate` and the benches.

use std::time::Instant;

use crate::error::Result;
use crate::gpu::{GpuBuffer, GpuContext};

/// Records `record` `repeats` times into one compute pass, runs it once to warm up and once
/// timed, and returns the GPU time per repetition in microseconds, and whether the figure
/// came from timestamp queries (true) or the wall clock (false).
pub fn time_gpu(
    ctx: &GpuContext,
    repeats: u32,
    record: &dyn Fn(&mut wgpu::ComputePass),
) -> Result<(f64, bool)> {
    let repeats = repeats.max(1);
    run_pass(ctx, repeats, record, None)?;
    if !ctx.features.timestamp_query {
        let start = Instant::now();
        run_pass(ctx, repeats, record, None)?;
        return Ok((
            start.elapsed().as_secs_f64() * 1e6 / f64::from(repeats),
            false,
        ));
    }
    let query_set = ctx.scoped("timestamp query set", || {
        ctx.device.create_query_set(&wgpu::QuerySetDescriptor {
            label: Some("time_gpu"),
            ty: wgpu::QueryType::Timestamp,
            count: 2,
        })
    })?;
    let resolved = ctx.scoped("timestamp buffer", || {
        ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("time_gpu resolve"),
            size: 16,
            usage: wgpu::BufferUsages::QUERY_RESOLVE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        })
    })?;
    let resolved = GpuBuffer {
        buffer: resolved,
        len: 4,
        offset: 0,
    };
    run_pass(ctx, repeats, record, Some((&query_set, &resolved)))?;
    let words: Vec<u32> = ctx.read_buffer(&resolved)?;
    let begin = u64::from(words[0]) | (u64::from(words[1]) << 32);
    let end = u64::from(words[2]) | (u64::from(words[3]) << 32);
    let nanos = end.saturating_sub(begin) as f64 * f64::from(ctx.queue.get_timestamp_period());
    Ok((nanos / 1e3 / f64::from(repeats), true))
}

/// GPU time per repetition of the work `record` adds, in microseconds (and whether from
/// timestamp queries): one run after a warm-up when it takes 5 ms or more (slow adapters like
/// lavapipe, where one run is stable), else the median of three runs of enough back-to-back
/// repetitions to fill about 20 ms each.
pub fn time_gpu_median(
    ctx: &GpuContext,
    record: &dyn Fn(&mut wgpu::ComputePass),
) -> Result<(f64, bool)> {
    let (once, timestamps) = time_gpu(ctx, 1, record)?;
    if once >= 5_000.0 {
        return Ok((once, timestamps));
    }
    let repeats = (20_000.0 / once.max(0.1)).ceil().clamp(2.0, 1000.0) as u32;
    let mut runs = (0..3)
        .map(|_| time_gpu(ctx, repeats, record).map(|(us, _)| us))
        .collect::<Result<Vec<f64>>>()?;
    runs.sort_by(f64::total_cmp);
    Ok((runs[1], timestamps))
}

fn run_pass(
    ctx: &GpuContext,
    repeats: u32,
    record: &dyn Fn(&mut wgpu::ComputePass),
    timestamps: Option<(&wgpu::QuerySet, &GpuBuffer)>,
) -> Result<()> {
    let mut encoder = ctx.device.create_command_encoder(&Default::default());
    {
        let timestamp_writes = timestamps.map(|(set, _)| wgpu::ComputePassTimestampWrites {
            query_set: set,
            beginning_of_pass_write_index: Some(0),
            end_of_pass_write_index: Some(1),
        });
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("time_gpu"),
            timestamp_writes,
        });
        for _ in 0..repeats {
            record(&mut pass);
        }
    }
    if let Some((set, buffer)) = timestamps {
        encoder.resolve_query_set(set, 0..2, &buffer.buffer, 0);
    }
    ctx.submit_and_wait("time_gpu", encoder.finish())
}
