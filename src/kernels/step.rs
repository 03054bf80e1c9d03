//! The step states on the GPU: a table with one row [step, cursor] per step of an epoch (or
//! per batch of an evaluation pass), written by the host once per epoch, each row at a
//! multiple of the adapter's min_storage_buffer_offset_alignment. A kernel with a
//! `Slot::Step` binding reads the row that the recorded step's dynamic offset names
//! (`Dispatch::record_at_state`), so a training step needs no dispatch to advance a counter
//! and no copy from the host. The rows come from cpu::step::step_states, the sequence the
//! CPU executor follows.

use crate::cpu::step::step_states;
use crate::error::{Error, Result};
use crate::gpu::{GpuBuffer, GpuContext};

/// Rows of step states, one per step, bound to kernels through [`StepStates::binding`].
pub struct StepStates {
    table: GpuBuffer,
    /// The first row's two words: what a dispatch binds (the dynamic offset moves it).
    first_row: GpuBuffer,
    /// Bytes from one row to the next.
    stride: u32,
    rows: usize,
}

impl StepStates {
    /// A table of `rows` states (at least one), written from [1, 0] with steps of `batch`
    /// rows.
    pub fn new(ctx: &GpuContext, label: &str, rows: usize, batch: usize) -> Result<Self> {
        let rows = rows.max(1);
        let stride = ctx.limits.min_storage_buffer_offset_alignment.max(8);
        // create_buffer refuses a table beyond the adapter's buffer size with a clear error.
        let table = ctx.create_buffer(label, rows.saturating_mul(stride as usize / 4))?;
        let first_row = table.view(0, 2)?;
        let states = StepStates {
            table,
            first_row,
            stride,
            rows,
        };
        states.write(ctx, [1, 0], rows, batch)?;
        Ok(states)
    }

    /// Writes `count` rows: `first`, then each advanced by a step of `batch` rows.
    pub fn write(
        &self,
        ctx: &GpuContext,
        first: [u32; 2],
        count: usize,
        batch: usize,
    ) -> Result<()> {
        if count > self.rows {
            return Err(Error::InvalidArgument(format!(
                "{count} step states for a table of {}",
                self.rows
            )));
        }
        let words_per_row = self.stride as usize / 4;
        let mut words = vec![0u32; count * words_per_row];
        for (row, state) in step_states(first, count, batch).into_iter().enumerate() {
            words[row * words_per_row..row * words_per_row + 2].copy_from_slice(&state);
        }
        ctx.write_buffer(&self.table, &words)
    }

    /// Size of the table in bytes.
    pub fn bytes(&self) -> u64 {
        self.table.bytes()
    }

    /// The buffer to bind to a `Slot::Step` binding.
    pub fn binding(&self) -> &GpuBuffer {
        &self.first_row
    }

    /// The dynamic offset, in bytes, of row `row`.
    pub fn offset(&self, row: usize) -> u32 {
        row as u32 * self.stride
    }

    /// Rows in the table.
    pub fn rows(&self) -> usize {
        self.rows
    }
}
