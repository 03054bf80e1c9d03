//! Burn 0.22.1's training step on the adapter wgpu picks (lavapipe on a machine without a
//! GPU), for the peer rows of BENCHMARKS.md: the VAE 784-400-20 and the AE 784-256-784 of
//! the PyTorch examples at batch 128, Adam (0.9, 0.999, 1e-8), lr 1e-3, one fixed batch in
//! [0, 1] resident on the device. Prints the first step, 5 warm-up steps (each synced), then
//! 3 blocks of 20 steps with one loss read at the end of each block, in ms per step.

use burn::nn::{Linear, LinearConfig};
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use burn::tensor::activation::relu;
use burn::tensor::Distribution;
use std::time::Instant;

const B: usize = 128;
const LR: f64 = 1e-3;

#[derive(Module, Debug)]
struct Vae {
    fc1: Linear,
    fc21: Linear,
    fc22: Linear,
    fc3: Linear,
    fc4: Linear,
}

impl Vae {
    fn new(d: &Device) -> Self {
        Self {
            fc1: LinearConfig::new(784, 400).init(d),
            fc21: LinearConfig::new(400, 20).init(d),
            fc22: LinearConfig::new(400, 20).init(d),
            fc3: LinearConfig::new(20, 400).init(d),
            fc4: LinearConfig::new(400, 784).init(d),
        }
    }
    fn loss(&self, x: &Tensor<2>, d: &Device) -> Tensor<1> {
        let h = relu(self.fc1.forward(x.clone()));
        let mu = self.fc21.forward(h.clone());
        let logvar = self.fc22.forward(h);
        let eps = Tensor::<2>::random([B, 20], Distribution::Normal(0.0, 1.0), d);
        let z = mu.clone() + logvar.clone().mul_scalar(0.5).exp() * eps;
        let logits = self.fc4.forward(relu(self.fc3.forward(z)));
        // BCE with logits, summed: max(l,0) - l*t + log(1 + exp(-|l|))
        let bce = (relu(logits.clone()) - logits.clone() * x.clone() + logits.abs().neg().exp().log1p()).sum();
        let kl = (logvar.clone().add_scalar(1.0) - mu.square() - logvar.exp()).sum().mul_scalar(-0.5);
        bce + kl
    }
}

#[derive(Module, Debug)]
struct Ae {
    enc: Linear,
    dec: Linear,
}

impl Ae {
    fn new(d: &Device) -> Self {
        Self { enc: LinearConfig::new(784, 256).init(d), dec: LinearConfig::new(256, 784).init(d) }
    }
    fn loss(&self, x: &Tensor<2>, _d: &Device) -> Tensor<1> {
        let y = self.dec.forward(relu(self.enc.forward(x.clone())));
        (y - x.clone()).square().sum()
    }
}

fn bench<M: Module>(name: &str, mut model: M, loss_fn: fn(&M, &Tensor<2>, &Device) -> Tensor<1>, x: &Tensor<2>, d: &Device) {
    let mut optim = AdamConfig::new().with_beta_1(0.9).with_beta_2(0.999).with_epsilon(1e-8).init();
    let mut step = |model: M| -> (M, Tensor<1>) {
        let loss = loss_fn(&model, x, d);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        (optim.step(LR, model, grads), loss)
    };
    // warm-up: first step + 5 more, each synced and timed separately
    let mut warm = Vec::new();
    for _ in 0..6 {
        let t = Instant::now();
        let (m, loss) = step(model);
        model = m;
        let l: f32 = loss.into_scalar();
        d.sync().unwrap();
        warm.push((t.elapsed().as_secs_f64() * 1e3, l));
    }
    println!("{name}: first step {:.1} ms (loss {:.1})", warm[0].0, warm[0].1);
    for (i, (ms, l)) in warm[1..].iter().enumerate() {
        println!("{name}: warm-up step {} {:.1} ms (loss {:.1})", i + 1, ms, l);
    }
    const N: usize = 20;
    for rep in 0..3 {
        let t = Instant::now();
        let mut last = None;
        for _ in 0..N {
            let (m, loss) = step(model);
            model = m;
            last = Some(loss);
        }
        let l: f32 = last.unwrap().into_scalar();
        d.sync().unwrap();
        let ms = t.elapsed().as_secs_f64() * 1e3 / N as f64;
        println!("{name}: timed block {} mean {:.2} ms/step over {N} steps (last loss {:.1})", rep + 1, ms, l);
    }
}

fn main() {
    let (device, setup) = Device::wgpu_options().init_with_setup().expect("wgpu init");
    let info = setup.adapter.get_info();
    println!("adapter: {} ({:?}, driver {} {})", info.name, info.backend, info.driver, info.driver_info);
    println!("fusion feature: {}", cfg!(feature = "fusion"));
    let device = device.autodiff();
    let x = Tensor::<2>::random([B, 784], Distribution::Uniform(0.0, 1.0), &device);
    bench("VAE", Vae::new(&device), Vae::loss, &x, &device);
    bench("AE", Ae::new(&device), Ae::loss, &x, &device);
}
