// The training step's state, kept on the GPU so that a step needs no copy from the host:
// state (2) u32 = [step, cursor]. `step` numbers the optimizer update (1 for the first; Adam
// and SGD read it, and the reparameterization keys its noise by it); `cursor` is the row of
// the epoch's shuffled index list where the next batch starts (the gather kernels read it).
//   advance_step: step += 1, cursor += batch. One thread, recorded last in every step.

struct Params {
    batch: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> state: array<u32>;  // (2) step, cursor

@compute @workgroup_size(1)
fn advance_step() {
    state[0] = state[0] + 1u;
    state[1] = state[1] + params.batch;
}
