//! The probes on synthetic data with known structure: well-separated clusters are found by
//! kNN and k-means, NMI and ARI match hand-computed and scikit-learn's documented values, the
//! linear probe separates what is separable, PCA recovers planted directions, bad input is
//! an error, and the scatter decodes as a PNG of the stated size.

mod common;

use latent::probe::{
    accuracy, adjusted_rand_index, knn_accuracies, linear_probe_accuracy, nearest_neighbours,
    normalized_mutual_info, pca_baseline, probe, probe_with_progress, silhouette, Features, KMeans,
    KMeansOptions, LinearOptions, Pca, ProbeOptions, ProbeReport, ProbeRow, Supervised,
};
use latent::Error;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// A standard normal draw (Box-Muller).
fn normal(rng: &mut StdRng) -> f32 {
    let u: f64 = 1.0 - rng.random::<f64>();
    let v: f64 = rng.random();
    ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
}

/// `per_class` rows around each of `centres` (classes, width) with noise of `sigma`, the
/// classes interleaved; labels are the centre indices.
fn blobs(
    centres: &[Vec<f32>],
    per_class: usize,
    sigma: f32,
    rng: &mut StdRng,
) -> (Vec<f32>, Vec<u8>) {
    let (mut values, mut labels) = (Vec::new(), Vec::new());
    for _ in 0..per_class {
        for (class, centre) in centres.iter().enumerate() {
            values.extend(centre.iter().map(|c| c + sigma * normal(rng)));
            labels.push(class as u8);
        }
    }
    (values, labels)
}

/// Four centres 20 apart along different axes of 5-D space.
fn separated_centres() -> Vec<Vec<f32>> {
    (0..4)
        .map(|c| (0..5).map(|i| if i == c { 20.0 } else { 0.0 }).collect())
        .collect()
}

fn labelled(values: Vec<f32>, width: usize, labels: Vec<u8>) -> Features {
    Features::new(values, width, Some(labels)).unwrap()
}

#[test]
fn well_separated_clusters_score_perfectly() {
    let seed = common::seed();
    let mut rng = StdRng::seed_from_u64(seed);
    let centres = separated_centres();
    let (train_values, train_labels) = blobs(&centres, 50, 1.0, &mut rng);
    let (test_values, test_labels) = blobs(&centres, 20, 1.0, &mut rng);
    let train = labelled(train_values, 5, train_labels);
    let test = labelled(test_values, 5, test_labels);
    let options = ProbeOptions {
        seed,
        ..ProbeOptions::default()
    };
    let row = probe("blobs", &train, &test, &options).unwrap();
    assert_eq!(row.knn1, Some(1.0), "seed {seed}");
    assert_eq!(row.knn5, Some(1.0), "seed {seed}");
    assert_eq!(row.linear, Some(1.0), "seed {seed}");
    assert_eq!(row.clusters, 4, "seed {seed}");
    assert!(row.nmi.unwrap() > 0.999, "seed {seed}: {row:?}");
    assert!(row.ari.unwrap() > 0.999, "seed {seed}: {row:?}");
    // Within-cluster spread σ² per column against between-centre distances of 20.
    assert!(row.silhouette.unwrap() > 0.8, "seed {seed}: {row:?}");
    assert!(row.within_fraction.unwrap() < 0.05, "seed {seed}: {row:?}");
    assert!(
        (row.inertia_per_row - 5.0).abs() < 1.5,
        "seed {seed}: {row:?}"
    );
    assert_eq!((row.width, row.train_rows, row.test_rows), (5, 200, 80));
    // The same seed gives the same figures.
    assert_eq!(probe("blobs", &train, &test, &options).unwrap(), row);
}

#[test]
fn probing_tells_each_stage_as_it_starts_and_gives_the_same_row() {
    let mut rng = StdRng::seed_from_u64(common::seed());
    let (train_values, train_labels) = blobs(&separated_centres(), 20, 1.0, &mut rng);
    let (test_values, test_labels) = blobs(&separated_centres(), 5, 1.0, &mut rng);
    let train = labelled(train_values.clone(), 5, train_labels);
    let test = labelled(test_values.clone(), 5, test_labels);
    let options = ProbeOptions::default();
    let mut stages = Vec::new();
    let row = probe_with_progress("blobs", &train, &test, &options, &mut |stage| {
        stages.push(stage.to_string())
    })
    .unwrap();
    assert_eq!(stages, ["k-means", "silhouette", "kNN", "linear probe"]);
    assert_eq!(row, probe("blobs", &train, &test, &options).unwrap());
    // Without labels, no supervised stages.
    let unlabelled = |values: Vec<f32>| Features::new(values, 5, None).unwrap();
    let (train, test) = (unlabelled(train_values), unlabelled(test_values));
    stages.clear();
    probe_with_progress("blobs", &train, &test, &options, &mut |stage| {
        stages.push(stage.to_string())
    })
    .unwrap();
    assert_eq!(stages, ["k-means", "silhouette"]);
}

#[test]
fn nearest_neighbours_match_a_plain_search() {
    let seed = common::seed();
    let mut rng = StdRng::seed_from_u64(seed);
    // More train rows and test rows than one block of the fast search (2048 and 256), and
    // a width of 3.
    let train_values: Vec<f32> = (0..2500 * 3).map(|_| normal(&mut rng)).collect();
    let test_values: Vec<f32> = (0..300 * 3).map(|_| normal(&mut rng)).collect();
    let train = Features::new(train_values.clone(), 3, None).unwrap();
    let test = Features::new(test_values.clone(), 3, None).unwrap();
    let found = nearest_neighbours(&train, &test, 4).unwrap();
    for (q, query) in test_values.chunks(3).enumerate() {
        let mut order: Vec<(f64, usize)> = train_values
            .chunks(3)
            .enumerate()
            .map(|(r, row)| {
                let d: f64 = row
                    .iter()
                    .zip(query)
                    .map(|(a, b)| f64::from(a - b).powi(2))
                    .sum();
                (d, r)
            })
            .collect();
        order.sort_by(|a, b| a.0.total_cmp(&b.0));
        let expected: Vec<usize> = order[..4].iter().map(|&(_, r)| r).collect();
        assert_eq!(&found[q * 4..q * 4 + 4], expected, "seed {seed}, query {q}");
    }
}

#[test]
fn knn_votes_by_majority() {
    // Train rows on a line: labels 0 0 0 1 1 at positions 0..5. A query at 3.9 has nearest
    // row 4 (label 1), and among its 5 nearest three have label 0.
    let train = labelled(vec![0.0, 1.0, 2.0, 3.0, 4.0], 1, vec![0, 0, 0, 1, 1]);
    let test = labelled(vec![3.9], 1, vec![1]);
    assert_eq!(knn_accuracies(&train, &test, &[1, 5]).unwrap(), [1.0, 0.0]);
}

#[test]
fn ari_matches_scikit_learn_documented_values() {
    let ari = |a: &[usize], b: &[usize]| adjusted_rand_index(a, b).unwrap();
    // A relabelling of the same partition.
    assert_eq!(ari(&[0, 0, 1, 1], &[1, 1, 0, 0]), 1.0);
    // Σ C(nᵢⱼ, 2) = 1, Σ C(aᵢ, 2) = 1, Σ C(bⱼ, 2) = 2, C(4, 2) = 6: expected 1/3, max 3/2,
    // ARI = (1 − 1/3) / (3/2 − 1/3) = 4/7.
    assert!((ari(&[0, 0, 1, 2], &[0, 0, 1, 1]) - 4.0 / 7.0).abs() < 1e-12);
    assert!((ari(&[0, 0, 1, 1], &[0, 0, 1, 2]) - 4.0 / 7.0).abs() < 1e-12);
    // Every class split across clusters.
    assert_eq!(ari(&[0, 0, 0, 0], &[0, 1, 2, 3]), 0.0);
    // Below chance: index 0, expected 2/3, max 2: (0 − 2/3) / (2 − 2/3) = −1/2.
    assert!((ari(&[0, 0, 1, 1], &[0, 1, 0, 1]) + 0.5).abs() < 1e-12);
}

#[test]
fn nmi_matches_hand_computed_values() {
    let nmi = |a: &[usize], b: &[usize]| normalized_mutual_info(a, b).unwrap();
    assert!((nmi(&[0, 0, 1, 1, 2], &[5, 5, 3, 3, 9]) - 1.0).abs() < 1e-12);
    // H(U) = 1.5 bits, H(V) = 1 bit, V a function of U so I = 1 bit: 1 / 1.25.
    assert!((nmi(&[0, 0, 1, 2], &[0, 0, 1, 1]) - 0.8).abs() < 1e-12);
    // Independent labellings.
    assert_eq!(nmi(&[0, 0, 1, 1], &[0, 1, 0, 1]), 0.0);
    assert_eq!(nmi(&[0, 0, 0, 0], &[0, 1, 2, 3]), 0.0);
    assert_eq!(nmi(&[3, 3, 3], &[1, 1, 1]), 1.0);
    // Large random labellings are nearly independent.
    let seed = common::seed();
    let mut rng = StdRng::seed_from_u64(seed);
    let a: Vec<usize> = (0..20000).map(|_| rng.random_range(0..10)).collect();
    let b: Vec<usize> = (0..20000).map(|_| rng.random_range(0..10)).collect();
    assert!(nmi(&a, &b) < 0.01, "seed {seed}: {}", nmi(&a, &b));
    assert!(
        adjusted_rand_index(&a, &b).unwrap().abs() < 0.01,
        "seed {seed}"
    );
    assert!((accuracy(&[1, 2, 3], &[1, 0, 3]).unwrap() - 2.0 / 3.0).abs() < 1e-12);
}

#[test]
fn silhouette_of_two_points_per_cluster() {
    // Clusters {0, 1} and {10, 11} on a line. Row 0: a = 1, b = (10 + 11) / 2, so
    // s = 9.5 / 10.5; row 1: a = 1, b = (9 + 10) / 2, s = 8.5 / 9.5; rows 3 and 2 mirror them.
    let values = [0.0f32, 1.0, 10.0, 11.0];
    let s = silhouette(&values, 1, &[0, 0, 1, 1], 100, 1)
        .unwrap()
        .unwrap();
    let expected = (9.5 / 10.5 + 8.5 / 9.5) / 2.0;
    assert!((s - expected).abs() < 1e-9, "{s} vs {expected}");
    // One cluster has no silhouette.
    assert_eq!(silhouette(&values, 1, &[2, 2, 2, 2], 100, 1).unwrap(), None);
}

#[test]
fn linear_probe_separates_separable_classes_and_beats_chance_on_noisy_ones() {
    let seed = common::seed();
    let mut rng = StdRng::seed_from_u64(seed);
    // Three classes by the first coordinate: below −1, between −0.5 and 0.5, above 1.
    let mut separable = |rows: usize| {
        let (mut values, mut labels) = (Vec::new(), Vec::new());
        for r in 0..rows {
            let class = r % 3;
            let low = [-3.0f32, -0.5, 1.0][class];
            let x0 = low + rng.random::<f32>() * [2.0f32, 1.0, 2.0][class];
            values.extend([x0, normal(&mut rng), normal(&mut rng)]);
            labels.push(class as u8);
        }
        labelled(values, 3, labels)
    };
    let (train, test) = (separable(600), separable(300));
    let options = LinearOptions {
        l2: 1e-6,
        iterations: 500,
    };
    // Class 1 sits between the others: separable by two linear boundaries, which a
    // softmax over three linear scores can represent.
    let separated = linear_probe_accuracy(&train, &test, options).unwrap();
    assert!(separated > 0.99, "seed {seed}: {separated}");

    // Two classes with means ±0.5 on one of four axes, unit noise: the best any classifier
    // can do is Φ(0.5) ≈ 0.69.
    let mut noisy = |rows: usize| {
        let (mut values, mut labels) = (Vec::new(), Vec::new());
        for r in 0..rows {
            let class = r % 2;
            let mean = if class == 0 { -0.5 } else { 0.5 };
            values.push(mean + normal(&mut rng));
            values.extend((0..3).map(|_| normal(&mut rng)));
            labels.push(class as u8);
        }
        labelled(values, 4, labels)
    };
    let (train, test) = (noisy(2000), noisy(2000));
    let noisy_accuracy = linear_probe_accuracy(&train, &test, LinearOptions::default()).unwrap();
    assert!(
        (0.62..0.76).contains(&noisy_accuracy),
        "seed {seed}: {noisy_accuracy}"
    );
}

#[test]
fn pca_recovers_planted_directions() {
    let seed = common::seed();
    let mut rng = StdRng::seed_from_u64(seed);
    let width = 6;
    // u and v: orthonormal, not along the axes.
    let u = [0.5f32, 0.5, 0.5, 0.5, 0.0, 0.0];
    let v = [0.5f32, -0.5, 0.5, -0.5, 0.0, 0.0];
    let offset = [3.0f32, -1.0, 0.0, 2.0, 5.0, -4.0];
    let rows = 5000;
    let mut values = Vec::with_capacity(rows * width);
    for _ in 0..rows {
        let (a, b) = (5.0 * normal(&mut rng), 2.0 * normal(&mut rng));
        for i in 0..width {
            values.push(offset[i] + a * u[i] + b * v[i] + 0.3 * normal(&mut rng));
        }
    }
    let pca = Pca::fit(&values, width, 3).unwrap();
    let components = pca.components();
    let along = |c: usize, d: &[f32; 6]| -> f64 {
        (0..width)
            .map(|i| components[c * width + i] * f64::from(d[i]))
            .sum::<f64>()
            .abs()
    };
    assert!(along(0, &u) > 0.999, "seed {seed}: {components:?}");
    assert!(along(1, &v) > 0.999, "seed {seed}: {components:?}");
    let variance = pca.explained_variance();
    // 25 + 0.09 and 4 + 0.09, then noise alone.
    assert!(
        (variance[0] / 25.09 - 1.0).abs() < 0.1,
        "seed {seed}: {variance:?}"
    );
    assert!(
        (variance[1] / 4.09 - 1.0).abs() < 0.1,
        "seed {seed}: {variance:?}"
    );
    assert!(variance[1] > variance[2], "seed {seed}: {variance:?}");
    let ratio_sum: f64 = pca.explained_variance_ratio().iter().sum();
    assert!(
        ratio_sum < 1.0 && ratio_sum > 0.99,
        "seed {seed}: {ratio_sum}"
    );
    for (i, &m) in pca.mean().iter().enumerate() {
        assert!(
            (m - f64::from(offset[i])).abs() < 0.3,
            "seed {seed}: mean {i} = {m}"
        );
    }
    // The coordinates have the explained variances as variances.
    let coordinates = pca.transform(&values).unwrap();
    for c in 0..3 {
        let column: Vec<f64> = coordinates.chunks(3).map(|row| f64::from(row[c])).collect();
        let mean = column.iter().sum::<f64>() / rows as f64;
        let var = column.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (rows - 1) as f64;
        assert!(mean.abs() < 1e-3, "seed {seed}: {mean}");
        assert!(
            (var / variance[c] - 1.0).abs() < 1e-3,
            "seed {seed}: {var} vs {}",
            variance[c]
        );
    }
}

#[test]
fn pca_baseline_projects_both_sets_with_their_labels() {
    let seed = common::seed();
    let mut rng = StdRng::seed_from_u64(seed);
    let (train_values, train_labels) = blobs(&separated_centres(), 30, 1.0, &mut rng);
    let (test_values, test_labels) = blobs(&separated_centres(), 10, 1.0, &mut rng);
    let train = labelled(train_values, 5, train_labels.clone());
    let test = labelled(test_values, 5, test_labels.clone());
    let (train_pca, test_pca) = pca_baseline(&train, &test, 3).unwrap();
    assert_eq!((train_pca.width(), train_pca.rows()), (3, 120));
    assert_eq!((test_pca.width(), test_pca.rows()), (3, 40));
    assert_eq!(train_pca.labels(), Some(&train_labels[..]));
    assert_eq!(test_pca.labels(), Some(&test_labels[..]));
    // Three components keep the four clusters apart.
    let row = probe("pca", &train_pca, &test_pca, &ProbeOptions::default()).unwrap();
    assert_eq!(row.knn1, Some(1.0), "seed {seed}");
}

#[test]
fn kmeans_inertia_is_that_of_its_assignment() {
    let seed = common::seed();
    let mut rng = StdRng::seed_from_u64(seed);
    let values: Vec<f32> = (0..300 * 2).map(|_| normal(&mut rng)).collect();
    let kmeans = KMeans::fit(&values, 2, 5, KMeansOptions::default(), seed).unwrap();
    let (clusters, inertia) = kmeans.assign(&values).unwrap();
    assert!(
        (inertia - kmeans.inertia()).abs() < 1e-6 * inertia,
        "seed {seed}"
    );
    assert_eq!(kmeans.k(), 5);
    // Each centroid is the mean of its rows (Lloyd stopped at a fixed point).
    for (c, centre) in kmeans.centroids().chunks(2).enumerate() {
        let rows: Vec<&[f32]> = values
            .chunks(2)
            .zip(&clusters)
            .filter(|(_, &k)| k == c)
            .map(|(row, _)| row)
            .collect();
        for i in 0..2 {
            let mean = rows.iter().map(|r| f64::from(r[i])).sum::<f64>() / rows.len() as f64;
            assert!((mean - f64::from(centre[i])).abs() < 1e-4, "seed {seed}");
        }
    }
}

fn is_invalid_argument<T: std::fmt::Debug>(result: latent::Result<T>) -> bool {
    matches!(result, Err(Error::InvalidArgument(_)))
}

fn is_data_error<T: std::fmt::Debug>(result: latent::Result<T>) -> bool {
    matches!(result, Err(Error::Data { .. }))
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    assert!(is_invalid_argument(Features::new(vec![1.0], 0, None)));
    assert!(is_invalid_argument(Features::new(vec![], 2, None)));
    assert!(is_data_error(Features::new(vec![1.0, 2.0, 3.0], 2, None)));
    assert!(is_data_error(Features::new(vec![1.0, f32::NAN], 2, None)));
    assert!(is_data_error(Features::new(
        vec![1.0, 2.0],
        1,
        Some(vec![0])
    )));

    let four = labelled(vec![0.0, 1.0, 2.0, 3.0], 1, vec![0, 0, 1, 1]);
    let wide = labelled(vec![0.0, 1.0, 2.0, 3.0], 2, vec![0, 1]);
    let unlabelled = Features::new(vec![0.0, 1.0, 2.0, 3.0], 1, None).unwrap();
    let options = ProbeOptions::default();
    // Width mismatch.
    assert!(is_invalid_argument(probe("x", &four, &wide, &options)));
    assert!(is_invalid_argument(pca_baseline(&four, &wide, 1)));
    assert!(is_invalid_argument(knn_accuracies(&four, &wide, &[1])));
    assert!(is_invalid_argument(linear_probe_accuracy(
        &four,
        &wide,
        LinearOptions::default()
    )));
    // k larger than the rows: kNN-5 on 4 train rows, 5 clusters of 4 rows.
    assert!(is_invalid_argument(probe("x", &four, &four, &options)));
    assert!(is_invalid_argument(knn_accuracies(&four, &four, &[0])));
    let five_clusters = ProbeOptions {
        clusters: Some(5),
        supervised: Supervised::Never,
        ..options
    };
    assert!(is_invalid_argument(probe(
        "x",
        &four,
        &four,
        &five_clusters
    )));
    // Labels missing where a supervised figure is asked for.
    let always = ProbeOptions {
        supervised: Supervised::Always,
        ..options
    };
    assert!(is_invalid_argument(probe("x", &unlabelled, &four, &always)));
    assert!(is_invalid_argument(knn_accuracies(
        &four,
        &unlabelled,
        &[1]
    )));
    // Without labels and without asking, the unsupervised figures come back alone.
    let row = probe("x", &unlabelled, &unlabelled, &options).unwrap();
    assert_eq!(
        (row.knn1, row.linear, row.nmi, row.ari),
        (None, None, None, None)
    );
    assert_eq!(row.clusters, 4);
    // PCA, k-means and metrics.
    assert!(is_invalid_argument(Pca::fit(&[1.0, 2.0, 3.0, 4.0], 2, 3)));
    assert!(is_invalid_argument(Pca::fit(&[1.0, 2.0], 2, 1)));
    assert!(is_invalid_argument(Pca::fit(&[1.0, 2.0, 3.0], 2, 1)));
    let pca = Pca::fit(&[1.0, 2.0, 3.0, 5.0], 2, 1).unwrap();
    assert!(is_invalid_argument(pca.transform(&[1.0, 2.0, 3.0])));
    let no_restarts = KMeansOptions {
        restarts: 0,
        max_iterations: 10,
    };
    assert!(is_invalid_argument(KMeans::fit(
        &[1.0, 2.0],
        1,
        1,
        no_restarts,
        0
    )));
    assert!(is_invalid_argument(KMeans::fit(
        &[1.0, f32::INFINITY],
        1,
        1,
        KMeansOptions::default(),
        0
    )));
    let fitted = KMeans::fit(&[1.0, 2.0], 1, 1, KMeansOptions::default(), 0).unwrap();
    assert!(is_invalid_argument(fitted.assign(&[1.0, f32::NAN])));
    assert!(fitted.assign(&[1.0, 3.0]).is_ok());
    assert!(is_invalid_argument(adjusted_rand_index(&[0, 1], &[0])));
    assert!(is_invalid_argument(normalized_mutual_info(&[], &[])));
    assert!(is_invalid_argument(accuracy(&[1], &[1, 2])));
    assert!(is_invalid_argument(silhouette(&[1.0, 2.0], 1, &[0], 10, 0)));
    let negative_l2 = LinearOptions {
        l2: -1.0,
        iterations: 10,
    };
    assert!(is_invalid_argument(linear_probe_accuracy(
        &four,
        &four,
        negative_l2
    )));
}

#[test]
fn report_prints_an_aligned_table_and_json() {
    let full = ProbeRow {
        name: "vae codes".into(),
        width: 20,
        train_rows: 60000,
        test_rows: 10000,
        knn1: Some(0.9712),
        knn5: Some(0.975),
        linear: Some(0.9),
        clusters: 10,
        nmi: Some(0.7),
        ari: Some(0.61234),
        inertia_per_row: 3.5,
        within_fraction: Some(0.4),
        silhouette: Some(0.12),
    };
    let bare = ProbeRow {
        name: "pca of pixels, unlabelled".into(),
        knn1: None,
        knn5: None,
        linear: None,
        nmi: None,
        ari: None,
        silhouette: None,
        ..full.clone()
    };
    let report = ProbeReport {
        rows: vec![full, bare],
    };
    let table = report.to_string();
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    assert!(
        lines[0].starts_with("representation") && lines[0].contains("kNN-1"),
        "{table}"
    );
    assert!(
        lines[1].starts_with("vae codes ") && lines[1].contains("0.971"),
        "{table}"
    );
    assert!(
        lines[1].contains("0.612") && !lines[1].contains('-'),
        "{table}"
    );
    assert!(lines[2].contains(" - "), "{table}");
    // Aligned: every line as long as the heading, and the figures end in the same column.
    assert!(
        lines
            .iter()
            .all(|l| l.chars().count() == lines[0].chars().count()),
        "{table}"
    );
    let json: serde_json::Value = serde_json::from_str(&report.to_json().unwrap()).unwrap();
    assert_eq!(json["rows"][0]["knn1"], 0.9712);
    assert_eq!(json["rows"][1]["name"], "pca of pixels, unlabelled");
    assert!(json["rows"][1]["knn1"].is_null());
    assert_eq!(json["rows"][1]["clusters"], 10);
}

/// The decoded (width, height, RGB bytes) of a PNG file.
fn decode_png(path: &std::path::Path) -> (u32, u32, Vec<u8>) {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut pixels).unwrap();
    assert_eq!(info.color_type, png::ColorType::Rgb);
    pixels.truncate(info.buffer_size());
    (info.width, info.height, pixels)
}

fn has_colour(pixels: &[u8], colour: [u8; 3]) -> bool {
    pixels.chunks(3).any(|p| p == colour)
}

#[test]
fn scatter_writes_a_png_that_decodes() {
    use latent::io::scatter::{label_colour, scatter_codes, SCATTER_HEIGHT, SCATTER_WIDTH};
    let seed = common::seed();
    let mut rng = StdRng::seed_from_u64(seed);
    let dir = std::env::temp_dir().join(format!("latent-scatter-{}-{seed}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (codes, labels) = blobs(&separated_centres(), 20, 1.0, &mut rng);
    // Width 5: the first two principal components.
    let path = dir.join("codes.png");
    scatter_codes(&path, &codes, 5, Some(&labels)).unwrap();
    let (width, height, pixels) = decode_png(&path);
    assert_eq!(
        (width as usize, height as usize),
        (SCATTER_WIDTH, SCATTER_HEIGHT)
    );
    for class in 0..4 {
        assert!(
            has_colour(&pixels, label_colour(Some(class))),
            "class {class}"
        );
    }
    assert!(!has_colour(&pixels, label_colour(Some(4))));
    // Width 2 as it is, without labels.
    let flat: Vec<f32> = codes.chunks(5).flat_map(|r| [r[0], r[1]]).collect();
    let path = dir.join("flat.png");
    scatter_codes(&path, &flat, 2, None).unwrap();
    let (_, _, pixels) = decode_png(&path);
    assert!(has_colour(&pixels, label_colour(None)));
    assert!(!has_colour(&pixels, label_colour(Some(0))));
    // Bad input.
    assert!(is_invalid_argument(scatter_codes(&path, &flat, 1, None)));
    assert!(is_invalid_argument(scatter_codes(
        &path,
        &flat,
        2,
        Some(&labels[..3])
    )));
    assert!(is_invalid_argument(scatter_codes(
        &path,
        &[f32::NAN, 0.0],
        2,
        None
    )));
    std::fs::remove_dir_all(&dir).unwrap();
}
