use latent::cpu::matmul::MatmulShape;
use latent::gpu::{time_gpu_median, GpuContext, GpuOptions};
use latent::kernels::matmul::{matmul_with_variant, MatmulVariant};
fn main() {
    let ctx = GpuContext::new(&GpuOptions::from_env().unwrap()).unwrap();
    let variant: MatmulVariant = "subgroup".parse().unwrap();
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().unwrap())
        .collect();
    let (fm, fk, fn_) = (args[0], args[1], args[2]);
    for (m, k, n) in [(fm, fk, fn_), (64, 64, 128)] {
        let shape = MatmulShape {
            trans_a: true,
            ..MatmulShape::new(m, n, k)
        };
        let a = ctx.upload("a", &vec![0.5f32; m * k]).unwrap();
        let b = ctx.upload("b", &vec![0.5f32; k * n]).unwrap();
        let c = ctx.upload("c", &vec![0.0f32; m * n]).unwrap();
        let d = matmul_with_variant(&ctx, &c, &a, &b, None, &shape, variant).unwrap();
        latent::kernels::run(&ctx, "x", &[&d]).unwrap();
        let start = std::time::Instant::now();
        latent::kernels::run(&ctx, "x", &[&d, &d, &d, &d, &d, &d, &d, &d, &d, &d]).unwrap();
        let wall = start.elapsed().as_secs_f64() * 1e5;
        let _ = time_gpu_median;
        print!("{m}x{k}x{n} TN: {:.0} us wall; ", wall);
    }
    println!();
}
