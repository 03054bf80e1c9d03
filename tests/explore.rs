//! The latent-space paths and sweeps behind `latent interpolate` and `latent traverse`.

use latent::explore::{code_ranges, interpolation_codes, lerp, slerp, traversal_codes};

fn norm(v: &[f32]) -> f32 {
    v.iter().map(|x| x * x).sum::<f32>().sqrt()
}

#[test]
fn paths_start_and_end_at_their_codes() {
    let codes = [1.0, 0.0, 0.0, 2.0, -1.0, 1.0];
    for spherical in [false, true] {
        let path = interpolation_codes(&codes, 2, &[(0, 1), (2, 0)], 5, spherical).unwrap();
        assert_eq!(path.len(), 2 * 5 * 2);
        let close = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-6);
        assert!(close(&path[0..2], &codes[0..2]) && close(&path[8..10], &codes[2..4]));
        assert!(close(&path[10..12], &codes[4..6]) && close(&path[18..20], &codes[0..2]));
    }
}

#[test]
fn slerp_follows_the_great_circle_and_lerp_the_chord() {
    let (a, b) = ([3.0, 0.0], [0.0, 3.0]);
    let middle = slerp(&a, &b, 0.5);
    // On the circle of radius 3, at 45°.
    assert!((norm(&middle) - 3.0).abs() < 1e-5);
    assert!((middle[0] - middle[1]).abs() < 1e-6);
    // The chord's midpoint is inside the circle.
    assert!((norm(&lerp(&a, &b, 0.5)) - 3.0 / 2f32.sqrt()).abs() < 1e-5);
    // Parallel codes and a zero code fall back to the straight line.
    assert_eq!(
        slerp(&[1.0, 1.0], &[2.0, 2.0], 0.5),
        lerp(&[1.0, 1.0], &[2.0, 2.0], 0.5)
    );
    assert_eq!(slerp(&[0.0, 0.0], &[2.0, 2.0], 0.25), vec![0.5, 0.5]);
}

#[test]
fn traversals_move_one_dimension_over_its_range() {
    let base = [0.5, -0.5, 2.0];
    let ranges = [(-3.0, 3.0), (0.0, 1.0), (-1.0, 1.0)];
    let sweep = traversal_codes(&base, &[1, 2], &ranges, 3).unwrap();
    assert_eq!(
        sweep,
        vec![
            0.5, 0.0, 2.0, 0.5, 0.5, 2.0, 0.5, 1.0, 2.0, // dimension 1: 0, ½, 1
            0.5, -0.5, -1.0, 0.5, -0.5, 0.0, 0.5, -0.5, 1.0, // dimension 2: −1, 0, 1
        ]
    );
    assert_eq!(
        code_ranges(&[1.0, 5.0, -2.0, 7.0], 2).unwrap(),
        vec![(-2.0, 1.0), (5.0, 7.0)]
    );
}

#[test]
fn bad_requests_are_errors() {
    let codes = [0.0; 6];
    assert!(interpolation_codes(&codes, 2, &[(0, 3)], 5, false).is_err());
    assert!(interpolation_codes(&codes, 2, &[(0, 1)], 1, false).is_err());
    assert!(interpolation_codes(&codes, 4, &[(0, 1)], 5, false).is_err());
    assert!(traversal_codes(&[0.0; 2], &[2], &[(0.0, 1.0); 2], 3).is_err());
    assert!(traversal_codes(&[0.0; 2], &[0], &[(0.0, 1.0); 1], 3).is_err());
    assert!(code_ranges(&[], 2).is_err());
}
