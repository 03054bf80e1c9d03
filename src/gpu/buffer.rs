//! GPU buffers: creation with size checks against the adapter's limits, upload, download
//! (a staging buffer, `map_async`, and a wait that times out), and a pool that hands back
//! buffers of a size already made so that a plan can reuse them.
//!
//! Every buffer holds 4-byte elements (f32 or u32); `len` counts elements.

use std::collections::HashMap;
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::gpu::GpuContext;

/// A storage buffer of `len` 4-byte elements, or a view of `len` elements starting `offset`
/// bytes into a larger one (see [`GpuBuffer::view`]).
#[derive(Debug)]
pub struct GpuBuffer {
    pub buffer: wgpu::Buffer,
    pub len: usize,
    /// Start of this buffer's elements in `buffer`, in bytes (0 unless a view).
    pub offset: u64,
}

/// Views must start at a multiple of this many elements (256 bytes: the largest
/// min_storage_buffer_offset_alignment an adapter may require).
pub const VIEW_ALIGNMENT: usize = 64;

/// Bytes in MiB, for reports.
pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

impl GpuBuffer {
    /// Size in bytes.
    pub fn bytes(&self) -> u64 {
        self.len as u64 * 4
    }

    /// Elements start..start+len of this buffer as a buffer of its own, for binding a part of
    /// a flat buffer (one parameter of a model). `start` must be a multiple of
    /// [`VIEW_ALIGNMENT`].
    pub fn view(&self, start: usize, len: usize) -> Result<GpuBuffer> {
        if !start.is_multiple_of(VIEW_ALIGNMENT) || len == 0 || start + len > self.len {
            return Err(Error::InvalidArgument(format!(
                "view {start}..{} of a buffer of {}: must be non-empty, inside, and start at a \
                 multiple of {VIEW_ALIGNMENT}",
                start + len,
                self.len
            )));
        }
        Ok(GpuBuffer {
            buffer: self.buffer.clone(),
            len,
            offset: self.offset + start as u64 * 4,
        })
    }

    /// This buffer's range as a binding resource.
    pub fn binding(&self) -> wgpu::BindingResource<'_> {
        wgpu::BindingResource::Buffer(wgpu::BufferBinding {
            buffer: &self.buffer,
            offset: self.offset,
            size: std::num::NonZeroU64::new(self.bytes()),
        })
    }
}

const STORAGE_USAGE: wgpu::BufferUsages = wgpu::BufferUsages::STORAGE
    .union(wgpu::BufferUsages::COPY_SRC)
    .union(wgpu::BufferUsages::COPY_DST);

impl GpuContext {
    /// The largest storage buffer this adapter can create and bind whole, in bytes.
    pub fn max_binding_bytes(&self) -> u64 {
        self.limits
            .max_storage_buffer_binding_size
            .min(self.limits.max_buffer_size)
    }

    /// Checks that a storage buffer of `len` elements can exist and be bound on this adapter.
    pub fn check_buffer_size(&self, what: &str, len: usize) -> Result<u64> {
        if len == 0 {
            return Err(Error::InvalidArgument(format!(
                "{what}: a buffer of zero elements"
            )));
        }
        let bytes = (len as u64).checked_mul(4).ok_or_else(|| Error::TooLarge {
            what: what.to_string(),
            bytes: u64::MAX,
            limit: self.limits.max_buffer_size,
            limit_name: "max_buffer_size",
        })?;
        let binding_limit = self.limits.max_storage_buffer_binding_size;
        if bytes > binding_limit {
            return Err(Error::TooLarge {
                what: what.to_string(),
                bytes,
                limit: binding_limit,
                limit_name: "max_storage_buffer_binding_size",
            });
        }
        if bytes > self.limits.max_buffer_size {
            return Err(Error::TooLarge {
                what: what.to_string(),
                bytes,
                limit: self.limits.max_buffer_size,
                limit_name: "max_buffer_size",
            });
        }
        Ok(bytes)
    }

    /// A zero-filled storage buffer of `len` elements.
    pub fn create_buffer(&self, label: &str, len: usize) -> Result<GpuBuffer> {
        let size = self.check_buffer_size(label, len)?;
        let buffer = self.scoped(label, || {
            self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size,
                usage: STORAGE_USAGE,
                mapped_at_creation: false,
            })
        })?;
        Ok(GpuBuffer {
            buffer,
            len,
            offset: 0,
        })
    }

    /// A storage buffer holding `data` (f32, u32 or i32).
    pub fn upload<T: bytemuck::Pod>(&self, label: &str, data: &[T]) -> Result<GpuBuffer> {
        let buffer = self.create_buffer(label, element_count::<T>(label, data.len())?)?;
        self.write_buffer(&buffer, data)?;
        Ok(buffer)
    }

    /// Overwrites the start of `buffer` with `data`.
    pub fn write_buffer<T: bytemuck::Pod>(&self, buffer: &GpuBuffer, data: &[T]) -> Result<()> {
        let len = element_count::<T>("write_buffer", data.len())?;
        if len > buffer.len {
            return Err(Error::InvalidArgument(format!(
                "write_buffer: {len} elements do not fit a buffer of {}",
                buffer.len
            )));
        }
        self.scoped("write_buffer", || {
            self.queue
                .write_buffer(&buffer.buffer, buffer.offset, bytemuck::cast_slice(data))
        })
    }

    /// Copies a buffer back to the host and waits for it.
    pub fn read_buffer<T: bytemuck::Pod>(&self, buffer: &GpuBuffer) -> Result<Vec<T>> {
        element_count::<T>("read_buffer", 1)?;
        let size = buffer.bytes();
        let staging = self.scoped("read_buffer", || {
            self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("staging"),
                size,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        })?;
        let mut encoder = self.device.create_command_encoder(&Default::default());
        encoder.copy_buffer_to_buffer(&buffer.buffer, buffer.offset, &staging, 0, size);
        self.submit_and_wait("read_buffer", encoder.finish())?;

        let (sender, receiver) = std::sync::mpsc::channel();
        staging.map_async(wgpu::MapMode::Read, .., move |result| {
            let _ = sender.send(result);
        });
        // Another thread's poll may run the callback, after our own poll has returned: wait on
        // the channel, polling again, until the deadline.
        let deadline = Instant::now() + self.timeout;
        let mapped = loop {
            self.wait("read_buffer map", None)?;
            match receiver.recv_timeout(Duration::from_millis(1)) {
                Ok(result) => break result,
                Err(RecvTimeoutError::Timeout) if Instant::now() < deadline => continue,
                Err(_) => {
                    return Err(Error::Timeout {
                        what: "read_buffer map".into(),
                        timeout: self.timeout,
                    })
                }
            }
        };
        mapped.map_err(|e| Error::Gpu {
            op: "read_buffer map".into(),
            message: e.to_string(),
        })?;
        let view = staging.get_mapped_range(..).map_err(|e| Error::Gpu {
            op: "read_buffer map".into(),
            message: e.to_string(),
        })?;
        let data = bytemuck::pod_collect_to_vec(&view);
        drop(view);
        staging.unmap();
        Ok(data)
    }
}

/// Buffers hold 4-byte elements only; this returns how many a slice of `T` fills.
fn element_count<T>(what: &str, n: usize) -> Result<usize> {
    if std::mem::size_of::<T>() != 4 {
        return Err(Error::InvalidArgument(format!(
            "{what}: elements must be 4 bytes (f32, u32, i32), got {} bytes",
            std::mem::size_of::<T>()
        )));
    }
    Ok(n)
}

/// Packs bytes into u32 words, little-endian, the last word zero-padded; the GPU reads
/// byte `i` as `(words[i / 4] >> (8 * (i % 4))) & 0xff`.
pub fn pack_bytes(bytes: &[u8]) -> Vec<u32> {
    bytes
        .chunks(4)
        .map(|c| {
            let mut word = [0u8; 4];
            word[..c.len()].copy_from_slice(c);
            u32::from_le_bytes(word)
        })
        .collect()
}

/// Hands out storage buffers by size and takes them back, so that buffers of the same size
/// are created once and reused.
#[derive(Default)]
pub struct BufferPool {
    free: HashMap<usize, Vec<GpuBuffer>>,
    created: usize,
}

impl BufferPool {
    /// A buffer of exactly `len` elements: a returned one if there is one, else a new one.
    /// Its contents are whatever its last user left.
    pub fn take(&mut self, ctx: &GpuContext, label: &str, len: usize) -> Result<GpuBuffer> {
        if let Some(buffer) = self.free.get_mut(&len).and_then(Vec::pop) {
            return Ok(buffer);
        }
        self.created += 1;
        ctx.create_buffer(label, len)
    }

    /// Returns a buffer to the pool.
    pub fn give(&mut self, buffer: GpuBuffer) {
        self.free.entry(buffer.len).or_default().push(buffer);
    }

    /// How many buffers the pool has created in all.
    pub fn created(&self) -> usize {
        self.created
    }
}
