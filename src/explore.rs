//! The latent space made visible: codes along paths between pairs of codes (linear, or
//! spherical as suits a VAE's Gaussian prior) and codes sweeping one latent dimension with
//! the others fixed. Decode them with `infer::decode` and lay them out with
//! `io::image::write_grid_png`: one row per pair or per dimension.

use crate::error::{host_capacity, Error, Result};

/// a + t·(b − a).
pub fn lerp(a: &[f32], b: &[f32], t: f32) -> Vec<f32> {
    a.iter().zip(b).map(|(&x, &y)| x + t * (y - x)).collect()
}

/// Spherical interpolation (Shoemake; White 2016 for generative models): along the great
/// circle between a and b, their norms interpolated linearly. Falls back to `lerp` when the
/// two are (anti)parallel or one is zero.
pub fn slerp(a: &[f32], b: &[f32], t: f32) -> Vec<f32> {
    let norm = |v: &[f32]| v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    let (na, nb) = (norm(a), norm(b));
    if na == 0.0 || nb == 0.0 {
        return lerp(a, b, t);
    }
    let cos = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| f64::from(x) * f64::from(y))
        .sum::<f64>()
        / (na * nb);
    let omega = cos.clamp(-1.0, 1.0).acos();
    if omega.sin().abs() < 1e-6 {
        return lerp(a, b, t);
    }
    let t = f64::from(t);
    let (wa, wb) = (
        ((1.0 - t) * omega).sin() / omega.sin(),
        (t * omega).sin() / omega.sin(),
    );
    a.iter()
        .zip(b)
        .map(|(&x, &y)| (wa * f64::from(x) + wb * f64::from(y)) as f32)
        .collect()
}

/// `steps` evenly spaced values from `lo` to `hi` (both included).
fn linspace(lo: f32, hi: f32, steps: usize) -> impl Iterator<Item = f32> {
    (0..steps).map(move |i| {
        let t = if steps == 1 {
            0.5
        } else {
            i as f32 / (steps - 1) as f32
        };
        lo + t * (hi - lo)
    })
}

/// For each pair (i, j) of rows of `codes` (rows, width), `steps` codes from code i to code
/// j: rows of the result are pairs, `steps` codes each.
pub fn interpolation_codes(
    codes: &[f32],
    width: usize,
    pairs: &[(usize, usize)],
    steps: usize,
    spherical: bool,
) -> Result<Vec<f32>> {
    check_codes(codes, width)?;
    if steps < 2 || pairs.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "interpolation needs at least one pair and 2 steps, got {} pairs and {steps} steps",
            pairs.len()
        )));
    }
    let rows = codes.len() / width;
    let len = pairs.len().saturating_mul(steps).saturating_mul(width);
    let mut out = host_capacity(len, "interpolation codes")?;
    for &(i, j) in pairs {
        if i >= rows || j >= rows {
            return Err(Error::InvalidArgument(format!(
                "pair ({i}, {j}): there are {rows} codes"
            )));
        }
        let (a, b) = (
            &codes[i * width..(i + 1) * width],
            &codes[j * width..(j + 1) * width],
        );
        for t in linspace(0.0, 1.0, steps) {
            out.extend(if spherical {
                slerp(a, b, t)
            } else {
                lerp(a, b, t)
            });
        }
    }
    Ok(out)
}

/// For each dimension in `dims`, `steps` copies of `base` with that dimension swept over
/// `ranges[d]` (lo, hi): rows of the result are dimensions, `steps` codes each.
pub fn traversal_codes(
    base: &[f32],
    dims: &[usize],
    ranges: &[(f32, f32)],
    steps: usize,
) -> Result<Vec<f32>> {
    let width = base.len();
    if width == 0 || ranges.len() != width || steps < 2 || dims.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "a traversal needs a code, a range per dimension ({} for {width}), dimensions and 2 steps (got {steps})",
            ranges.len()
        )));
    }
    let len = dims.len().saturating_mul(steps).saturating_mul(width);
    let mut out = host_capacity(len, "traversal codes")?;
    for &d in dims {
        if d >= width {
            return Err(Error::InvalidArgument(format!(
                "latent dimension {d}: the code has {width} (0..{})",
                width - 1
            )));
        }
        let (lo, hi) = ranges[d];
        for value in linspace(lo, hi, steps) {
            let mut code = base.to_vec();
            code[d] = value;
            out.extend(code);
        }
    }
    Ok(out)
}

/// Each dimension's (min, max) over codes (rows, width): the traversal range of an
/// autoencoder, whose code has no prior.
pub fn code_ranges(codes: &[f32], width: usize) -> Result<Vec<(f32, f32)>> {
    check_codes(codes, width)?;
    let mut ranges = vec![(f32::INFINITY, f32::NEG_INFINITY); width];
    for row in codes.chunks(width) {
        for (r, &v) in ranges.iter_mut().zip(row) {
            *r = (r.0.min(v), r.1.max(v));
        }
    }
    Ok(ranges)
}

fn check_codes(codes: &[f32], width: usize) -> Result<()> {
    if width == 0 || codes.is_empty() || !codes.len().is_multiple_of(width) {
        return Err(Error::InvalidArgument(format!(
            "{} code values do not make rows of {width}",
            codes.len()
        )));
    }
    Ok(())
}
