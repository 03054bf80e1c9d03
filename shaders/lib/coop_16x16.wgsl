// The cooperative-matrix size of shaders/matmul_coop_f16.wgsl on adapters that offer
// 16x16x16 F16->F32 with subgroups of 32 lanes (NVIDIA through VK_KHR_cooperative_matrix).
// The host includes this file or lib/coop_8x8.wgsl first: WGSL wants `enable` first.

enable f16;
enable wgpu_cooperative_matrix;

const TILE: u32 = 16u;     // M = N = K of one cooperative multiply-add
const THREADS: u32 = 32u;  // one subgroup: the cooperative operations are subgroup-scoped
alias CoopA = coop_mat16x16<f16, A>;
alias CoopB = coop_mat16x16<f16, B>;
alias CoopC = coop_mat16x16<f32, C>;
