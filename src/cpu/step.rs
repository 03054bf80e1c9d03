//! The step state [step, cursor] that kernels read through their step binding: `step`
//! numbers the optimizer update (1 for the first; Adam reads it, and the noise of the
//! reparameterization and of input corruption is keyed by it), `cursor` is the row of the
//! epoch's shuffled index list where the batch starts (the gather kernels read it). The CPU
//! executor advances one state after each step; the GPU executor writes the states of a
//! whole epoch into a table (kernels/step.rs) built here, so both follow one sequence.

/// state = [step + 1, cursor + batch].
pub fn advance_step(state: &mut [u32; 2], batch: usize) {
    state[0] = state[0].wrapping_add(1);
    state[1] = state[1].wrapping_add(batch as u32);
}

/// The states of `count` steps: `first`, then each one advanced by a step of `batch` rows.
pub fn step_states(first: [u32; 2], count: usize, batch: usize) -> Vec<[u32; 2]> {
    let mut state = first;
    (0..count)
        .map(|_| {
            let this = state;
            advance_step(&mut state, batch);
            this
        })
        .collect()
}
