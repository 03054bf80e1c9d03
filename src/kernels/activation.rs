//! Host side of shaders/relu.wgsl, sigmoid.wgsl and tanh.wgsl (element-wise activations).
//! CPU twins: src/cpu/activation.rs.

use bytemuck::{Pod, Zeroable};

use crate::cpu::check_nonzero;
use crate::error::{Error, Result};
use crate::gpu::{GpuBuffer, GpuContext};
use crate::kernels::{
    bytes_of, check_len, grid_for_elements, prepare, Dispatch, Kernel, Shader, Slot, Traffic,
    GRID_LIB,
};

pub const RELU_SHADER: Shader = Shader {
    name: "relu",
    source: include_str!("../../shaders/relu.wgsl"),
    includes: &[GRID_LIB],
};
pub const SIGMOID_SHADER: Shader = Shader {
    name: "sigmoid",
    source: include_str!("../../shaders/sigmoid.wgsl"),
    includes: &[GRID_LIB],
};
pub const TANH_SHADER: Shader = Shader {
    name: "tanh",
    source: include_str!("../../shaders/tanh.wgsl"),
    includes: &[GRID_LIB],
};

const FORWARD_SLOTS: &[(u32, Slot)] = &[(0, Slot::Uniform), (1, Slot::ReadWrite), (2, Slot::Read)];
const BACKWARD_SLOTS: &[(u32, Slot)] = &[
    (0, Slot::Uniform),
    (3, Slot::ReadWrite),
    (4, Slot::Read),
    (5, Slot::Read),
];

/// An element-wise activation function.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    Relu,
    Sigmoid,
    Tanh,
}

impl Activation {
    pub const ALL: [Activation; 3] = [Activation::Relu, Activation::Sigmoid, Activation::Tanh];

    /// The op's snake_case name ("relu", ...).
    pub fn name(self) -> &'static str {
        match self {
            Activation::Relu => "relu",
            Activation::Sigmoid => "sigmoid",
            Activation::Tanh => "tanh",
        }
    }

    fn kernels(self) -> (Kernel, Kernel) {
        let (shader, forward, backward) = match self {
            Activation::Relu => (&RELU_SHADER, "relu_forward", "relu_backward"),
            Activation::Sigmoid => (&SIGMOID_SHADER, "sigmoid_forward", "sigmoid_backward"),
            Activation::Tanh => (&TANH_SHADER, "tanh_forward", "tanh_backward"),
        };
        (
            Kernel {
                shader,
                entry: forward,
                slots: FORWARD_SLOTS,
            },
            Kernel {
                shader,
                entry: backward,
                slots: BACKWARD_SLOTS,
            },
        )
    }

    /// y (n) = f(x (n)).
    pub fn forward(
        self,
        ctx: &GpuContext,
        y: &GpuBuffer,
        x: &GpuBuffer,
        n: usize,
    ) -> Result<Dispatch> {
        let (forward, _) = self.kernels();
        check_nonzero(forward.entry, &[("n", n)])?;
        check_len(forward.entry, "y", y, n)?;
        check_len(forward.entry, "x", x, n)?;
        let params = Params::new(n);
        prepare(
            ctx,
            &forward,
            &[],
            Some(bytes_of(&params)),
            &[y, x],
            grid_for_elements(ctx, n)?,
            Traffic::floats(n, n),
        )
    }

    /// dx (n) = dy · f'(x), from the saved output y (n) and dy (n); writes dx.
    pub fn backward(
        self,
        ctx: &GpuContext,
        dx: &GpuBuffer,
        y: &GpuBuffer,
        dy: &GpuBuffer,
        n: usize,
    ) -> Result<Dispatch> {
        let (_, backward) = self.kernels();
        check_nonzero(backward.entry, &[("n", n)])?;
        check_len(backward.entry, "dx", dx, n)?;
        check_len(backward.entry, "y", y, n)?;
        check_len(backward.entry, "dy", dy, n)?;
        let params = Params::new(n);
        prepare(
            ctx,
            &backward,
            &[],
            Some(bytes_of(&params)),
            &[dx, y, dy],
            grid_for_elements(ctx, n)?,
            Traffic::floats(2 * n, n),
        )
    }
}

impl std::str::FromStr for Activation {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Activation::ALL
            .into_iter()
            .find(|a| a.name() == s.to_ascii_lowercase())
            .ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "unknown activation {s:?}: expected relu, sigmoid or tanh"
                ))
            })
    }
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    n: u32,
    _pad: [u32; 3],
}

impl Params {
    fn new(n: usize) -> Self {
        Params {
            n: n as u32,
            _pad: [0; 3],
        }
    }
}
