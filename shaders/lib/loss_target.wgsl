// Shared by bce.wgsl and mse.wgsl (prepended by the host, WGSL has no #include): the target
// element that prediction element i = row · cols + c is compared with. With TARGET_REPEAT =
// k the target has rows / k rows and prediction row r reads its row r / k: an IWAE's K
// samples of a data row are compared with that row, which is never copied K times. Reads
// `params` (its cols) and `expected`, which each loss file declares.

override TARGET_REPEAT: u32 = 1u;  // prediction rows per target row

fn target_at(i: u32) -> f32 {
    if (TARGET_REPEAT == 1u) {
        return expected[i];
    }
    let row = i / params.cols;
    return expected[(row / TARGET_REPEAT) * params.cols + (i - row * params.cols)];
}
