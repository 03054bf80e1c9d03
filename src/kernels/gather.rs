//! Host side of shaders/gather.wgsl: a batch of rows gathered by index from a data set
//! resident on the GPU (bytes packed four to a word, or floats), starting at the step
//! state's cursor in the epoch's index list. CPU twin: src/cpu/gather.rs.

use bytemuck::{Pod, Zeroable};

use crate::cpu::check_nonzero;
use crate::cpu::corrupt::Noise;
use crate::cpu::reparameterize::NoiseKey;
use crate::error::{Error, Result};
use crate::gpu::{GpuBuffer, GpuContext};
use crate::kernels::{
    bytes_of, check_len, grid_for_elements, prepare, Dispatch, Kernel, Shader, Slot, Traffic,
    CORRUPT_LIB, GRID_LIB, PHILOX_LIB,
};

pub const SHADER: Shader = Shader {
    name: "gather",
    source: include_str!("../../shaders/gather.wgsl"),
    includes: &[GRID_LIB, PHILOX_LIB, CORRUPT_LIB],
};

/// The data set's shard bindings of one dispatch: 3 to 6 (see shaders/gather.wgsl).
const SHARDS_A_DISPATCH: usize = 4;

const GATHER_U8: Kernel = Kernel {
    shader: &SHADER,
    entry: "gather_u8",
    slots: &[
        (0, Slot::Uniform),
        (1, Slot::ReadWrite),
        (2, Slot::Read),
        (3, Slot::Read),
        (4, Slot::Read),
        (5, Slot::Read),
        (6, Slot::Read),
        (7, Slot::Step),
    ],
};
/// gather_u8 with one thread per word of four bytes, for widths that are multiples of 4;
/// `out` is bound as vec4s (binding 8).
const GATHER_U8_WORDS: Kernel = Kernel {
    shader: &SHADER,
    entry: "gather_u8_words",
    slots: &[
        (0, Slot::Uniform),
        (8, Slot::ReadWrite),
        (2, Slot::Read),
        (3, Slot::Read),
        (4, Slot::Read),
        (5, Slot::Read),
        (6, Slot::Read),
        (7, Slot::Step),
    ],
};
const GATHER_F32: Kernel = Kernel {
    shader: &SHADER,
    entry: "gather_f32",
    slots: &[
        (0, Slot::Uniform),
        (1, Slot::ReadWrite),
        (2, Slot::Read),
        (3, Slot::Read),
        (4, Slot::Read),
        (5, Slot::Read),
        (6, Slot::Read),
        (7, Slot::Step),
    ],
};

/// A batch and its corruption (binding 12), for a denoising model.
const GATHER_CORRUPT: Kernel = Kernel {
    shader: &SHADER,
    entry: "gather_corrupt",
    slots: &[
        (0, Slot::Uniform),
        (1, Slot::ReadWrite),
        (2, Slot::Read),
        (3, Slot::Read),
        (4, Slot::Read),
        (5, Slot::Read),
        (6, Slot::Read),
        (7, Slot::Step),
        (12, Slot::ReadWrite),
    ],
};

/// gather_corrupt for bytes of a width that is a multiple of 4, a word a thread; out and
/// noisy bound as vec4s (bindings 8 and 13).
const GATHER_U8_WORDS_CORRUPT: Kernel = Kernel {
    shader: &SHADER,
    entry: "gather_u8_words_corrupt",
    slots: &[
        (0, Slot::Uniform),
        (8, Slot::ReadWrite),
        (2, Slot::Read),
        (3, Slot::Read),
        (4, Slot::Read),
        (5, Slot::Read),
        (6, Slot::Read),
        (7, Slot::Step),
        (13, Slot::ReadWrite),
    ],
};

/// A conditional model's x, its one-hot label and x | label in one dispatch: the data set's
/// first two shards (bindings 3 and 4), the labels (11), the outputs out (1), label_out (10)
/// and joined (9).
const GATHER_JOIN: Kernel = Kernel {
    shader: &SHADER,
    entry: "gather_join",
    slots: &[
        (0, Slot::Uniform),
        (1, Slot::ReadWrite),
        (10, Slot::ReadWrite),
        (9, Slot::ReadWrite),
        (2, Slot::Read),
        (3, Slot::Read),
        (4, Slot::Read),
        (11, Slot::Read),
        (7, Slot::Step),
    ],
};

/// The shards of a data set that gather_join binds.
const SHARDS_JOINED: usize = 2;

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    rows: u32,
    width: u32,
    data_rows: u32,
    rows_per_shard: u32,
    first_shard: u32,
    label_cols: u32,
    seed_lo: u32,
    seed_hi: u32,
    stream: u32,
    kind: u32,
    amount: f32,
    pad: [u32; 5],
}

impl Params {
    /// The parameters of a gather of `rows` from `data`'s shards from `first_shard`, with
    /// neither labels nor noise.
    fn new(data: &DataShards, rows: usize, first_shard: usize) -> Self {
        Params {
            rows: rows as u32,
            width: data.width as u32,
            data_rows: data.rows as u32,
            rows_per_shard: data.rows_per_shard as u32,
            first_shard: first_shard as u32,
            label_cols: 0,
            seed_lo: 0,
            seed_hi: 0,
            stream: 0,
            kind: 0,
            amount: 0.0,
            pad: [0; 5],
        }
    }
}

/// A data set on the GPU: `rows` rows of `width` bytes (packed four to a u32 word,
/// [`crate::gpu::pack_bytes`]) or floats, in shards of `rows_per_shard` whole rows (the last
/// one fewer), each within the adapter's storage binding size, so that a set larger than one
/// binding (128 MiB on many adapters) stays on the GPU. A gather binds four shards a
/// dispatch: a set of more than four takes a dispatch per four.
pub struct DataShards {
    pub shards: Vec<GpuBuffer>,
    pub rows_per_shard: usize,
    pub rows: usize,
    pub width: usize,
    /// Bytes (else floats).
    pub bytes: bool,
}

impl DataShards {
    /// Uploads `rows` rows of `width` bytes in shards of at most `max_shard_bytes` bytes
    /// ([`GpuContext::max_binding_bytes`] for the adapter's own limit).
    pub fn upload_u8(
        ctx: &GpuContext,
        label: &str,
        data: &[u8],
        (rows, width): (usize, usize),
        max_shard_bytes: u64,
    ) -> Result<Self> {
        check_rows(label, data.len(), rows, width)?;
        // Whole words: rows_per_shard · width bytes round up to at most the cap.
        let per_shard = shard_rows(label, rows, width, max_shard_bytes / 4 * 4)?;
        let shards = data
            .chunks(per_shard * width)
            .map(|part| ctx.upload(label, &crate::gpu::pack_bytes(part)))
            .collect::<Result<Vec<_>>>()?;
        Ok(DataShards {
            shards,
            rows_per_shard: per_shard,
            rows,
            width,
            bytes: true,
        })
    }

    /// Uploads `rows` rows of `width` floats in shards of at most `max_shard_bytes` bytes.
    pub fn upload_f32(
        ctx: &GpuContext,
        label: &str,
        data: &[f32],
        (rows, width): (usize, usize),
        max_shard_bytes: u64,
    ) -> Result<Self> {
        check_rows(label, data.len(), rows, width)?;
        let per_shard = shard_rows(label, rows, 4 * width, max_shard_bytes)?;
        let shards = data
            .chunks(per_shard * width)
            .map(|part| ctx.upload(label, part))
            .collect::<Result<Vec<_>>>()?;
        Ok(DataShards {
            shards,
            rows_per_shard: per_shard,
            rows,
            width,
            bytes: false,
        })
    }

    /// Bytes on the GPU.
    pub fn device_bytes(&self) -> u64 {
        self.shards.iter().map(GpuBuffer::bytes).sum()
    }
}

/// Checks that `len` values hold `rows` nonempty rows of `width`.
fn check_rows(label: &str, len: usize, rows: usize, width: usize) -> Result<()> {
    if rows == 0 || width == 0 || rows.checked_mul(width) != Some(len) {
        return Err(Error::InvalidArgument(format!(
            "{label}: {len} values for {rows} rows of {width}"
        )));
    }
    Ok(())
}

/// Rows per shard for rows of `row_bytes` in shards of at most `cap` bytes, or an error when
/// one row does not fit or the row count exceeds u32 (the kernel's indices).
fn shard_rows(label: &str, rows: usize, row_bytes: usize, cap: u64) -> Result<usize> {
    let fit = usize::try_from(cap / row_bytes.max(1) as u64).unwrap_or(usize::MAX);
    let per_shard = fit.min(rows.max(1));
    if per_shard == 0 {
        return Err(Error::TooLarge {
            what: format!("{label}: one row of {row_bytes} bytes"),
            bytes: row_bytes as u64,
            limit: cap,
            limit_name: "max_storage_buffer_binding_size",
        });
    }
    if rows > u32::MAX as usize {
        return Err(Error::InvalidArgument(format!(
            "{label}: {rows} rows; at most {} fit the kernels' u32 row indices",
            u32::MAX
        )));
    }
    Ok(per_shard)
}

/// Where a gathered batch comes from: the data set on the GPU, the epoch's index list (None:
/// the set's rows in order, rows past it zeros), and the step state whose cursor (word 1)
/// says where the batch starts.
pub struct GatherSource<'a> {
    pub data: &'a DataShards,
    pub indices: Option<&'a GpuBuffer>,
    pub state: &'a GpuBuffer,
}

/// The corruption a gather_corrupt draws: its output (the batch's shape), the noise and its
/// key (the step comes from the state).
pub struct Corruption<'a> {
    pub noisy: &'a GpuBuffer,
    pub noise: Noise,
    pub key: NoiseKey,
}

/// Prepares `kernel`, one thread per `per_thread` elements of out (and of the corruption's
/// output, when given): one dispatch per four shards of the data set (one for most sets).
fn prepare_gather(
    ctx: &GpuContext,
    (kernel, per_thread): (&Kernel, usize),
    out: &GpuBuffer,
    source: &GatherSource,
    rows: usize,
    corruption: Option<&Corruption>,
) -> Result<Vec<Dispatch>> {
    let op = kernel.entry;
    let data = source.data;
    check_nonzero(
        op,
        &[
            ("rows", rows),
            ("width", data.width),
            ("data_rows", data.rows),
        ],
    )?;
    check_len(op, "out", out, rows * data.width)?;
    if let Some(corruption) = corruption {
        corruption.noise.check()?;
        check_len(op, "noisy", corruption.noisy, rows * data.width)?;
    }
    if let Some(indices) = source.indices {
        check_len(op, "indices", indices, rows)?;
    }
    check_len(op, "state", source.state, 2)?;
    let shards = &data.shards;
    if shards.is_empty() || data.rows.div_ceil(data.rows_per_shard.max(1)) != shards.len() {
        return Err(Error::InvalidArgument(format!(
            "{op}: {} shards for {} rows of {} a shard",
            shards.len(),
            data.rows,
            data.rows_per_shard
        )));
    }
    for (s, shard) in shards.iter().enumerate() {
        let shard_rows = data.rows_per_shard.min(data.rows - s * data.rows_per_shard);
        let words = if data.bytes {
            (shard_rows * data.width).div_ceil(4)
        } else {
            shard_rows * data.width
        };
        check_len(op, "data shard", shard, words)?;
    }
    let grid = grid_for_elements(ctx, (rows * data.width).div_ceil(per_thread))?;
    let dispatches = shards.len().div_ceil(SHARDS_A_DISPATCH);
    // Each dispatch reads the index list and writes the rows that come from its shards:
    // which rows those are changes every step, so each counts an even share of the batch.
    let element_bytes = if data.bytes { 1 } else { 4 };
    let batch_elements = (rows * data.width / dispatches) as u64;
    let index_bytes = if source.indices.is_some() {
        4 * rows as u64
    } else {
        0
    };
    let outputs = 1 + u64::from(corruption.is_some());
    let traffic = Traffic {
        read_bytes: index_bytes + element_bytes * batch_elements,
        written_bytes: 4 * outputs * batch_elements,
    };
    // A dispatch per four shards, each writing the rows that come from its shards.
    (0..shards.len())
        .step_by(SHARDS_A_DISPATCH)
        .map(|first_shard| {
            let mut params = Params::new(data, rows, first_shard);
            if let Some(corruption) = corruption {
                let (kind, amount) = corruption.noise.kind_and_amount();
                params.seed_lo = corruption.key.seed as u32;
                params.seed_hi = (corruption.key.seed >> 32) as u32;
                params.stream = corruption.key.stream;
                (params.kind, params.amount) = (kind, amount);
            }
            // Slots past the last shard bind it again (read-only, never read).
            let shard = |s: usize| &shards[(first_shard + s).min(shards.len() - 1)];
            // In order, the index slot binds the state (never read there).
            let mut buffers = vec![
                out,
                source.indices.unwrap_or(source.state),
                shard(0),
                shard(1),
                shard(2),
                shard(3),
                source.state,
            ];
            let mut constants = Vec::new();
            if source.indices.is_none() {
                constants.push(("IN_ORDER", 1.0));
            }
            if let Some(corruption) = corruption {
                buffers.push(corruption.noisy);
                constants.push(("DATA_BYTES", if data.bytes { 1.0 } else { 0.0 }));
            }
            prepare(
                ctx,
                kernel,
                &constants,
                Some(bytes_of(&params)),
                &buffers,
                grid,
                traffic,
            )
        })
        .collect()
}

/// out (rows, width) = bytes of row indices\[cursor + r\] / 255 of a byte data set.
/// Widths that are multiples of 4 take one thread per word (gather_u8_words). One dispatch
/// per four shards of the set.
pub fn gather_u8(
    ctx: &GpuContext,
    out: &GpuBuffer,
    source: &GatherSource,
    rows: usize,
) -> Result<Vec<Dispatch>> {
    if !source.data.bytes {
        return Err(Error::InvalidArgument(
            "gather_u8: the data set holds floats".into(),
        ));
    }
    // A word per thread when rows start on word boundaries (and out on 16 bytes).
    let (kernel, per_thread) =
        if source.data.width.is_multiple_of(4) && out.offset.is_multiple_of(16) {
            (&GATHER_U8_WORDS, 4)
        } else {
            (&GATHER_U8, 1)
        };
    prepare_gather(ctx, (kernel, per_thread), out, source, rows, None)
}

/// out (rows, width) = row indices\[cursor + r\] of a float data set. One dispatch per
/// four shards of the set.
pub fn gather_f32(
    ctx: &GpuContext,
    out: &GpuBuffer,
    source: &GatherSource,
    rows: usize,
) -> Result<Vec<Dispatch>> {
    if source.data.bytes {
        return Err(Error::InvalidArgument(
            "gather_f32: the data set holds bytes".into(),
        ));
    }
    prepare_gather(ctx, (&GATHER_F32, 1), out, source, rows, None)
}

/// out (rows, width) = row indices\[cursor + r\] of the data set (bytes / 255 or floats),
/// and the corruption's noisy (rows, width) = out corrupted as kernels::corrupt::corrupt
/// would (the same bits, keyed by the state's step): a denoising model's clean and
/// corrupted batch in one dispatch (a thread per four elements) per four shards of the set.
pub fn gather_corrupt(
    ctx: &GpuContext,
    out: &GpuBuffer,
    corruption: &Corruption,
    source: &GatherSource,
    rows: usize,
) -> Result<Vec<Dispatch>> {
    // A word a thread when rows start on word boundaries (and both outputs on 16 bytes).
    let words = source.data.bytes
        && source.data.width.is_multiple_of(4)
        && out.offset.is_multiple_of(16)
        && corruption.noisy.offset.is_multiple_of(16);
    let kernel = if words {
        &GATHER_U8_WORDS_CORRUPT
    } else {
        &GATHER_CORRUPT
    };
    prepare_gather(ctx, (kernel, 4), out, source, rows, Some(corruption))
}

/// Whether [`gather_join`] can gather from `data` and its one-hot `labels`: the set in at
/// most two shards, the labels (floats) in one, of the same rows.
pub fn joins(data: &DataShards, labels: &DataShards) -> bool {
    data.shards.len() <= SHARDS_JOINED
        && labels.shards.len() == 1
        && !labels.bytes
        && labels.rows == data.rows
}

/// The outputs of a joined gather: x (rows, width), its labels (rows, label_cols) and
/// x | label (rows, width + label_cols).
pub struct JoinedBatch<'a> {
    pub x: &'a GpuBuffer,
    pub label: &'a GpuBuffer,
    pub joined: &'a GpuBuffer,
}

/// A conditional model's batch in one dispatch: x = row indices\[cursor + r\] of the data
/// set (bytes / 255 or floats), its label the same row of `labels` (one-hot floats, label_cols
/// wide), and x | label, the encoder's input: a gather of the labels and a concat fewer. For
/// a set that [`joins`] its labels; a thread per element of x | label.
pub fn gather_join(
    ctx: &GpuContext,
    out: &JoinedBatch,
    source: &GatherSource,
    labels: &DataShards,
    rows: usize,
) -> Result<Dispatch> {
    let op = "gather_join";
    let data = source.data;
    if !joins(data, labels) {
        return Err(Error::InvalidArgument(format!(
            "{op}: a set in {} shards with labels of {} rows in {} (at most {SHARDS_JOINED} \
             shards, and one of labels of the set's {} rows)",
            data.shards.len(),
            labels.rows,
            labels.shards.len(),
            data.rows
        )));
    }
    let label_cols = labels.width;
    check_nonzero(
        op,
        &[
            ("rows", rows),
            ("width", data.width),
            ("label_cols", label_cols),
        ],
    )?;
    check_len(op, "x", out.x, rows * data.width)?;
    check_len(op, "label", out.label, rows * label_cols)?;
    check_len(op, "joined", out.joined, rows * (data.width + label_cols))?;
    if let Some(indices) = source.indices {
        check_len(op, "indices", indices, rows)?;
    }
    check_len(op, "state", source.state, 2)?;
    check_len(op, "labels", &labels.shards[0], data.rows * label_cols)?;
    let element_bytes = if data.bytes { 1 } else { 4 };
    let index_bytes = if source.indices.is_some() {
        4 * rows
    } else {
        0
    };
    let traffic = Traffic {
        read_bytes: (index_bytes + rows * (element_bytes * data.width + 4 * label_cols)) as u64,
        written_bytes: 8 * (rows * (data.width + label_cols)) as u64,
    };
    let params = Params {
        label_cols: label_cols as u32,
        ..Params::new(data, rows, 0)
    };
    let shard = |s: usize| &data.shards[s.min(data.shards.len() - 1)];
    let buffers = [
        out.x,
        out.label,
        out.joined,
        source.indices.unwrap_or(source.state),
        shard(0),
        shard(1),
        &labels.shards[0],
        source.state,
    ];
    let mut constants = vec![("DATA_BYTES", if data.bytes { 1.0 } else { 0.0 })];
    if source.indices.is_none() {
        constants.push(("IN_ORDER", 1.0));
    }
    prepare(
        ctx,
        &GATHER_JOIN,
        &constants,
        Some(bytes_of(&params)),
        &buffers,
        grid_for_elements(ctx, rows * (data.width + label_cols))?,
        traffic,
    )
}
