//! CPU twin of shaders/step.wgsl: the step state [step, cursor] and its advance.

/// state = [step + 1, cursor + batch].
pub fn advance_step(state: &mut [u32; 2], batch: usize) {
    state[0] = state[0].wrapping_add(1);
    state[1] = state[1].wrapping_add(batch as u32);
}
