// The cooperative-matrix size of shaders/matmul_coop_f16.wgsl on adapters that offer
// 8x8x8 F16->F32 with subgroups of 8 lanes (lavapipe in Mesa 26.1, not 25.0; see
// dev/lavapipe_coop.sh). The host includes this file or lib/coop_16x16.wgsl first: WGSL wants
// `enable` first.

enable f16;
enable wgpu_cooperative_matrix;

const TILE: u32 = 8u;     // M = N = K of one cooperative multiply-add
const THREADS: u32 = 8u;  // one subgroup: the cooperative operations are subgroup-scoped
alias CoopA = coop_mat8x8<f16, A>;
alias CoopB = coop_mat8x8<f16, B>;
alias CoopC = coop_mat8x8<f32, C>;
