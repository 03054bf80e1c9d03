//! The `latent` binary end to end: `info`, `validate` (every kernel on the GPU against the
//! CPU), `bench`, and bad arguments giving exit code 2 with a clear message.
//!
//! The runs use the untuned matmul choice (LATENT_MATMUL=default) unless LATENT_MATMUL is
//! set, so that tests neither spend the autotune's seconds nor write to ~/.cache.

mod common;

use std::path::Path;
use std::process::{Command, Output};

fn latent(args: &[&str]) -> Output {
    let matmul = std::env::var("LATENT_MATMUL").unwrap_or_else(|_| "default".into());
    Command::new(env!("CARGO_BIN_EXE_latent"))
        .args(args)
        .env("LATENT_MATMUL", matmul)
        .output()
        .expect("run latent")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn validate_passes_on_this_gpu() {
    if common::gpu("validate_passes_on_this_gpu").is_none() {
        return;
    }
    let seed = common::seed().to_string();
    let out = latent(&["validate", "--repeats", "1", "--seed", &seed]);
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "latent validate failed:\n{stdout}\n{}",
        text(&out.stderr)
    );
    assert!(
        stdout.contains("kernel") && stdout.contains("max abs err") && stdout.contains("verdict"),
        "{stdout}"
    );
    for kernel in [
        "matmul",
        "sum_cols",
        "relu",
        "sigmoid",
        "tanh",
        "mse",
        "bce",
        "philox_fill",
        "reparameterize",
        "kl",
        "adam_step",
        "sgd_step",
        "gather_u8",
        "corrupt",
        "l1",
        "kl_sparsity",
        "concat",
        "repeat_rows",
        "log_weight",
        "neg_log_mean_exp",
        "bce_backward_rows",
    ] {
        assert!(
            stdout.lines().any(|l| l.starts_with(kernel)),
            "no {kernel} row in:\n{stdout}"
        );
    }
    assert!(stdout.contains(" 0 failed"), "{stdout}");
}

#[test]
fn info_lists_the_adapter() {
    if common::gpu("info_lists_the_adapter").is_none() {
        return;
    }
    let out = latent(&["info"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("[0]") && stdout.contains("features:") && stdout.contains("limits:"),
        "{stdout}"
    );
    // Each adapter names the matmul kernel it gets without tuning.
    assert!(stdout.contains("    matmul: "), "{stdout}");
    // And the CPU path its tiles and threads.
    assert!(
        stdout.contains("CPU path: CPU twins (f32; matmul in "),
        "{stdout}"
    );
}

#[test]
fn unknown_backend_is_exit_code_2() {
    let out = latent(&["validate", "--backend", "glide"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("unknown backend \"glide\""),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn missing_adapter_index_is_exit_code_2() {
    if common::gpu("missing_adapter_index_is_exit_code_2").is_none() {
        return;
    }
    let out = latent(&["validate", "--adapter", "99"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("no adapter matches \"99\""),
        "{}",
        text(&out.stderr)
    );
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "latent-cli-{name}-{}-{}",
        std::process::id(),
        common::seed()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn csv_rows(path: &std::path::Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect()
}

/// A checkpoint records its data (a CSV's absolute path, label column and test share):
/// `eval` from another directory, without --data, evaluates the run's own test rows.
#[test]
fn commands_on_a_checkpoint_load_the_runs_own_data() {
    let dir = temp_dir("own-data");
    std::fs::create_dir_all(&dir).unwrap();
    let csv = dir.join("rows.csv");
    let mut text_rows = String::from("label,a,b,c,d,e,f,g,h\n");
    for r in 0..200 {
        let values: Vec<String> = (0..8)
            .map(|c| format!("{:.3}", ((r * 7 + c * 3) % 17) as f32 / 17.0))
            .collect();
        text_rows += &format!("{},{}\n", r % 4, values.join(","));
    }
    std::fs::write(&csv, text_rows).unwrap();
    let run = dir.join("run");
    // Trained from `dir` with a relative path, as a user would.
    let trained = Command::new(env!("CARGO_BIN_EXE_latent"))
        .current_dir(&dir)
        .args([
            "train",
            "--cpu",
            "--data",
            "rows.csv",
            "--label-column",
            "0",
            "--test-fraction",
            "0.25",
            "--hidden",
            "16",
            "--latent",
            "2",
            "--batch",
            "16",
            "--epochs",
            "1",
            "--out",
            "run",
        ])
        .output()
        .unwrap();
    assert!(trained.status.success(), "{}", text(&trained.stderr));
    let record = latent::io::checkpoint::load_record(&run).unwrap();
    let source = record.data_source.expect("the run records its data");
    assert!(Path::new(&source.data).is_absolute(), "{}", source.data);
    assert_eq!((source.label_column, source.test_fraction), (Some(0), 0.25));
    let eval = latent(&["eval", "--cpu", "--checkpoint", run.to_str().unwrap()]);
    assert!(eval.status.success(), "{}", text(&eval.stderr));
    let printed = text(&eval.stdout);
    assert!(printed.contains("on 50 rows"), "{printed}");
    let logged: f64 = csv_rows(&run.join("loss.csv"))[1][2].parse().unwrap();
    let value: f64 = printed
        .split("test loss ")
        .nth(1)
        .and_then(|t| t.split(' ').next())
        .and_then(|v| v.parse().ok())
        .expect(&printed);
    assert!(
        (value - logged).abs() < 1e-3,
        "eval {value} vs logged {logged}"
    );
    // Samples of data that are not images, as rows.
    let samples = dir.join("samples.npy");
    let sample = latent(&[
        "sample",
        "--cpu",
        "--checkpoint",
        run.to_str().unwrap(),
        "--n",
        "5",
        "--out",
        samples.to_str().unwrap(),
    ]);
    assert!(sample.status.success(), "{}", text(&sample.stderr));
    let written = std::fs::read(&samples).unwrap();
    let header_len = u16::from_le_bytes([written[8], written[9]]) as usize;
    let header = String::from_utf8_lossy(&written[10..10 + header_len]).into_owned();
    assert!(header.contains("'shape': (5, 8)"), "{header}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Rows of a new file map to [0, 1] as the run's data did, whatever their own range: the
/// first 10 rows of a min-max scaled CSV, given alone, encode and score as they do inside the
/// whole file; `encode FILE` gives a code per row in the file's order.
#[test]
fn new_rows_map_as_the_runs_data_did_and_encode_in_order() {
    let dir = temp_dir("new-rows");
    std::fs::create_dir_all(&dir).unwrap();
    let line = |r: usize| {
        let (a, b) = ((r * 37 % 101) as f32 * 9.7, (r * 13 % 29) as f32 - 14.0);
        format!(
            "{},{a},{b},{},{},{}\n",
            r % 3,
            a * 0.5 + b,
            b * b,
            a - 3.0 * b
        )
    };
    let all = dir.join("all.csv");
    let head = dir.join("head.csv");
    let mut text_rows = String::from("label,a,b,c,d,e\n");
    (0..200).for_each(|r| text_rows += &line(r));
    std::fs::write(&all, &text_rows).unwrap();
    let first: String = (0..10).map(line).collect();
    std::fs::write(&head, format!("label,a,b,c,d,e\n{first}")).unwrap();
    let run = dir.join("run");
    let run_arg = run.to_str().unwrap();
    let trained = latent(&[
        "train",
        "--cpu",
        "--data",
        all.to_str().unwrap(),
        "--label-column",
        "0",
        "--hidden",
        "16",
        "--latent",
        "2",
        "--batch",
        "16",
        "--epochs",
        "2",
        "--out",
        run_arg,
    ]);
    assert!(trained.status.success(), "{}", text(&trained.stderr));
    let record = latent::io::checkpoint::load_record(&run).unwrap();
    assert!(
        matches!(record.scaling, Some(latent::data::Scaling::MinMax { .. })),
        "{:?}",
        record.scaling
    );
    // (codes of all rows, codes of the first 10 alone, scores of each, in that order).
    let results = |tag: &str| {
        let mut out = Vec::new();
        for (command, file) in [
            ("encode", &all),
            ("encode", &head),
            ("score", &all),
            ("score", &head),
        ] {
            let written = dir.join(format!(
                "{command}-{tag}-{}",
                file.file_name().unwrap().to_str().unwrap()
            ));
            let done = latent(&[
                command,
                "--cpu",
                "--checkpoint",
                run_arg,
                file.to_str().unwrap(),
                "--out",
                written.to_str().unwrap(),
            ]);
            assert!(done.status.success(), "{command}: {}", text(&done.stderr));
            out.push(csv_rows(&written)[1..].to_vec());
        }
        out
    };
    let now = results("recorded");
    assert_eq!(now[0].len(), 200, "a code per row of the file");
    // eval FILE: the loss of a file's rows.
    let eval = latent(&[
        "eval",
        "--cpu",
        "--checkpoint",
        run_arg,
        head.to_str().unwrap(),
    ]);
    assert!(eval.status.success(), "{}", text(&eval.stderr));
    assert!(
        text(&eval.stdout).contains(" loss ")
            && text(&eval.stdout).contains("on 10 rows of head.csv"),
        "{}",
        text(&eval.stdout)
    );
    assert_eq!(now[1], now[0][..10], "codes of the first rows alone");
    assert_eq!(now[3], now[2][..10], "scores of the first rows alone");
    // A checkpoint from before the scaling was recorded loads the run's data for it.
    let config = run.join("config.json");
    let mut json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&config).unwrap()).unwrap();
    json.as_object_mut().unwrap().remove("scaling").unwrap();
    std::fs::write(&config, serde_json::to_vec(&json).unwrap()).unwrap();
    assert_eq!(results("older"), now);
    // Rows out are in the data's units: samples; reconstructions and denoised versions of
    // the 20 test rows; 2 paths of 3 codes with their ends; 2 dimensions swept in 4 steps:
    // within each column's range and beyond [0, 1].
    let Some(latent::data::Scaling::MinMax { min, max }) = &record.scaling else {
        unreachable!()
    };
    for (command, extra, rows) in [
        ("sample", &["--n", "7"][..], 7),
        ("reconstruct", &[], 20),
        ("denoise", &["--noise", "gaussian:0.1"], 20),
        ("interpolate", &["--pairs", "2", "--steps", "3"], 10),
        ("traverse", &["--steps", "4"], 8),
    ] {
        let written = dir.join(format!("{command}.csv"));
        let done = latent(
            &[
                &[command, "--cpu", "--checkpoint", run_arg][..],
                extra,
                &["--out", written.to_str().unwrap()],
            ]
            .concat(),
        );
        assert!(done.status.success(), "{command}: {}", text(&done.stderr));
        assert!(
            text(&done.stdout).contains("in the data's units"),
            "{}",
            text(&done.stdout)
        );
        // Named as the training file's columns, the label column left out.
        assert_eq!(
            csv_rows(&written)[0],
            ["a", "b", "c", "d", "e"],
            "{command}"
        );
        let values: Vec<Vec<f32>> = csv_rows(&written)[1..]
            .iter()
            .map(|r| r.iter().map(|v| v.parse().unwrap()).collect())
            .collect();
        assert_eq!(values.len(), rows, "{command}");
        for row in &values {
            for ((&v, &low), &high) in row.iter().zip(min).zip(max) {
                assert!(
                    v >= low - 1e-3 * high.abs() && v <= high + 1e-3 * high.abs(),
                    "{command}: {v} in [{low}, {high}]"
                );
            }
        }
        assert!(values.iter().flatten().any(|&v| v > 2.0), "{values:?}");
    }
    // A picture of data that are not images: refused, saying how to get rows.
    let picture = latent(&["interpolate", "--cpu", "--checkpoint", run_arg]);
    assert_eq!(picture.status.code(), Some(2), "{}", text(&picture.stderr));
    assert!(
        text(&picture.stderr).contains("--out FILE.csv"),
        "{}",
        text(&picture.stderr)
    );
    // Rows of another width: refused, naming the file.
    let narrow = dir.join("narrow.csv");
    std::fs::write(&narrow, "1,2,3\n4,5,6\n").unwrap();
    let refused = latent(&[
        "encode",
        "--cpu",
        "--checkpoint",
        run_arg,
        narrow.to_str().unwrap(),
    ]);
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused.stderr));
    assert!(
        text(&refused.stderr).contains("narrow.csv"),
        "{}",
        text(&refused.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Labels from a file of their own (y beside X.npy) train a conditional VAE, are recorded
/// with the run, and come back for the commands on its checkpoint.
#[test]
fn a_labels_file_labels_npy_rows() {
    let dir = temp_dir("labels-file");
    std::fs::create_dir_all(&dir).unwrap();
    let rows = 120;
    let values: Vec<f32> = (0..rows * 4)
        .map(|i| ((i / 4) % 3) as f32 / 3.0 + (i % 4) as f32 / 16.0)
        .collect();
    let x = dir.join("X.npy");
    std::fs::write(&x, latent::io::codes::npy_bytes(&values, 4)).unwrap();
    let y = dir.join("y.csv");
    let labels: String = (0..rows).map(|r| format!("{}\n", r % 3)).collect();
    std::fs::write(&y, format!("class\n{labels}")).unwrap();
    let run = dir.join("run");
    let train = |labels: &Path, data: &str| {
        latent(&[
            "train",
            "--cpu",
            "--data",
            data,
            "--labels",
            labels.to_str().unwrap(),
            "--model",
            "cvae",
            "--hidden",
            "8",
            "--latent",
            "2",
            "--batch",
            "16",
            "--epochs",
            "1",
            "--out",
            run.to_str().unwrap(),
        ])
    };
    let trained = train(&y, x.to_str().unwrap());
    assert!(trained.status.success(), "{}", text(&trained.stderr));
    let source = latent::io::checkpoint::load_record(&run)
        .unwrap()
        .data_source
        .unwrap();
    assert!(source.labels.unwrap().ends_with("y.csv"));
    // probe, without --data or --labels, has the labels to score the codes by.
    let probe = latent(&["probe", "--cpu", "--checkpoint", run.to_str().unwrap()]);
    assert!(probe.status.success(), "{}", text(&probe.stderr));
    let printed = text(&probe.stdout);
    let codes = printed
        .lines()
        .find(|l| l.starts_with("codes"))
        .expect(&printed);
    let knn = codes.split_whitespace().rev().nth(7).unwrap();
    assert!(knn.parse::<f64>().is_ok(), "kNN-1 {knn:?} in {codes}");
    // New rows for the conditional model need labels of their own (a copy of X is another
    // file); the run's own data file takes the run's own labels file.
    let copy = dir.join("X-copy.npy");
    std::fs::copy(&x, &copy).unwrap();
    let encode = |file: &Path, extra: &[&str]| {
        let run = run.to_str().unwrap();
        let args = [
            "encode",
            "--cpu",
            "--checkpoint",
            run,
            file.to_str().unwrap(),
        ];
        latent(&[&args[..], extra].concat())
    };
    let unlabelled = encode(&copy, &[]);
    assert_eq!(
        unlabelled.status.code(),
        Some(2),
        "{}",
        text(&unlabelled.stderr)
    );
    assert!(
        text(&unlabelled.stderr).contains("give --labels"),
        "{}",
        text(&unlabelled.stderr)
    );
    let labelled = encode(&copy, &["--labels", y.to_str().unwrap()]);
    assert!(labelled.status.success(), "{}", text(&labelled.stderr));
    assert_eq!(csv_rows(&run.join("codes.csv")).len(), 1 + rows);
    let own = encode(&x, &[]);
    assert!(own.status.success(), "{}", text(&own.stderr));
    // Refused: labels one short, and labels for a set that has its own.
    let short = dir.join("short.csv");
    std::fs::write(&short, "1\n".repeat(rows - 1)).unwrap();
    let _ = std::fs::remove_dir_all(&run);
    for (labels, data, expected) in [
        (&short, x.to_str().unwrap(), "119 labels for the 120 rows"),
        (&y, "digits", "digits has labels of its own"),
    ] {
        let refused = train(labels, data);
        assert_eq!(refused.status.code(), Some(2), "{}", text(&refused.stderr));
        assert!(
            text(&refused.stderr).contains(expected),
            "{}",
            text(&refused.stderr)
        );
        assert!(!run.exists());
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A code wider than the input (an overcomplete autoencoder) is probed beside the PCA of
/// every pixel, not refused.
#[test]
fn probe_takes_a_code_wider_than_the_input() {
    let dir = temp_dir("wide-code");
    let dir_arg = dir.to_str().unwrap();
    let trained = latent(&[
        "train", "--cpu", "--data", "digits", "--model", "ae", "--latent", "80", "--epochs", "1",
        "--out", dir_arg,
    ]);
    assert!(trained.status.success(), "{}", text(&trained.stderr));
    let probe = latent(&["probe", "--cpu", "--checkpoint", dir_arg]);
    assert!(probe.status.success(), "{}", text(&probe.stderr));
    let printed = text(&probe.stdout);
    assert!(printed.contains("pca-64 of pixels"), "{printed}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn train_writes_a_checkpoint_and_a_loss_log_and_resumes_exactly() {
    let (straight, split) = (temp_dir("straight"), temp_dir("split"));
    let common_args = [
        "train", "--data", "digits", "--hidden", "64", "--latent", "4", "--cpu",
    ];
    let run = |extra: &[&str]| {
        let out = latent(&[&common_args[..], extra].concat());
        assert!(
            out.status.success(),
            "{}\n{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stdout)
    };
    let log = run(&[
        "--seed",
        "7",
        "--epochs",
        "2",
        "--out",
        straight.to_str().unwrap(),
    ]);
    assert!(
        log.contains("epoch 2/2") && log.contains("nats per example"),
        "{log}"
    );
    run(&[
        "--seed",
        "7",
        "--epochs",
        "1",
        "--out",
        split.to_str().unwrap(),
    ]);
    // Resuming takes the run's seed, for the split of the digits into train and test rows
    // as for the rest.
    run(&["--epochs", "2", "--resume", split.to_str().unwrap()]);

    // The files parse: CSV with one row per epoch, JSON config, safetensors weights.
    let (a, b) = (
        csv_rows(&straight.join("loss.csv")),
        csv_rows(&split.join("loss.csv")),
    );
    assert_eq!(a.len(), 3, "header and two epochs");
    assert_eq!(a[0][..3], ["epoch", "train_loss", "test_loss"]);
    // The resumed run's losses equal the uninterrupted run's, epoch by epoch.
    for (row_a, row_b) in a.iter().zip(&b).skip(1) {
        assert_eq!(row_a[..7], row_b[..7], "losses differ after resuming");
    }
    let plot = std::fs::read(split.join("loss.png")).unwrap();
    assert_eq!(&plot[..8], b"\x89PNG\r\n\x1a\n", "loss.png is a PNG");
    let record = latent::io::checkpoint::load_record(&split).unwrap();
    assert_eq!(
        (record.epoch, record.next_step),
        (2, 2 * 12 + 1),
        "digits: 1617 training rows / 128 per batch = 12 steps"
    );
    let plan =
        latent::graph::plan::Plan::compile(record.model.build(record.batch).unwrap().0).unwrap();
    let (wa, wb) = (
        latent::io::checkpoint::load_state(&straight, &plan).unwrap(),
        latent::io::checkpoint::load_state(&split, &plan).unwrap(),
    );
    assert_eq!(wa.params, wb.params, "weights differ after resuming");

    // A flag that would change the resumed run is refused, naming it and the run's own
    // model; repeating the run's values (as above) is no change.
    let resume = ["--resume", split.to_str().unwrap()];
    let changed = [
        "train", "--data", "digits", "--hidden", "64", "--latent", "5", "--cpu", "--seed", "7",
    ];
    let out = latent(&[&changed[..], &resume].concat());
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let message = text(&out.stderr);
    assert!(
        message.contains("--latent would change the run")
            && message.contains("a VAE 64-64-4-64-64")
            && !message.contains("--seed"),
        "{message}"
    );
    // An epoch count already reached: nothing to train, and the checkpoint untouched.
    let weights = std::fs::read(split.join("model.safetensors")).unwrap();
    let done = run(&["--epochs", "2", "--resume", split.to_str().unwrap()]);
    assert!(done.contains("nothing to train"), "{done}");
    assert_eq!(
        std::fs::read(split.join("model.safetensors")).unwrap(),
        weights
    );
    // --lr applies to a resumed run (fine-tuning), and is recorded.
    run(&[
        "--epochs",
        "3",
        "--lr",
        "0.0002",
        "--resume",
        split.to_str().unwrap(),
    ]);
    let record = latent::io::checkpoint::load_record(&split).unwrap();
    assert_eq!((record.epoch, record.adam.lr), (3, 0.0002));
    let _ = (
        std::fs::remove_dir_all(&straight),
        std::fs::remove_dir_all(&split),
    );
}

/// A training step whose tensors outgrow the GPU's bindings (an IWAE of 8 rows a batch and
/// 12,000 samples each: 153 MB a hidden layer, past lavapipe's 128 MiB) is refused with what
/// makes it fit, and nothing is written.
#[test]
fn train_says_what_shrinks_a_step_too_large_for_the_gpu() {
    let Some(ctx) = common::gpu("train_says_what_shrinks_a_step_too_large_for_the_gpu") else {
        return;
    };
    let limit = ctx.max_binding_bytes();
    let k = (limit as usize / (8 * 400 * 4)) + 1000;
    let dir = temp_dir("too-large");
    let out = latent(&[
        "train",
        "--backend",
        ctx.info.backend.to_str(),
        "--data",
        "digits",
        "--objective",
        "iwae",
        "--k",
        &k.to_string(),
        "--batch",
        "8",
        "--epochs",
        "1",
        "--out",
        dir.to_str().unwrap(),
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("8 rows a batch, {k} samples each"))
            && stderr.contains("a smaller --batch or --k fits"),
        "{stderr}"
    );
    assert!(!dir.exists(), "a refused run wrote {}", dir.display());
}

/// A VAE whose KL ends near zero (β = 200 on the digits) gets a note that its code carries
/// almost nothing; the plain VAE (β = 1) does not.
#[test]
fn train_notes_a_collapsed_posterior() {
    for (beta, collapses) in [("200", true), ("1", false)] {
        let dir = temp_dir(&format!("collapse-{beta}"));
        let out = latent(&[
            "train",
            "--data",
            "digits",
            "--hidden",
            "32",
            "--latent",
            "4",
            "--epochs",
            "3",
            "--cpu",
            "--beta",
            beta,
            "--out",
            dir.to_str().unwrap(),
        ]);
        let stderr = text(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert_eq!(
            stderr.contains("posterior collapse"),
            collapses,
            "β = {beta}: {stderr}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn train_on_the_gpu_matches_the_cpu_path() {
    if common::gpu("train_on_the_gpu_matches_the_cpu_path").is_none() {
        return;
    }
    let args = [
        "train", "--data", "digits", "--hidden", "32", "--latent", "4", "--epochs", "1", "--batch",
        "100",
    ];
    let (gpu_dir, cpu_dir) = (temp_dir("gpu"), temp_dir("cpu"));
    let backend = std::env::var("LATENT_BACKEND").unwrap_or_else(|_| "vulkan".into());
    let gpu = latent(
        &[
            &args[..],
            &["--backend", &backend, "--out", gpu_dir.to_str().unwrap()],
        ]
        .concat(),
    );
    let cpu = latent(&[&args[..], &["--cpu", "--out", cpu_dir.to_str().unwrap()]].concat());
    // And with the weight gradients grouped (forced), which also fuses Adam for this model.
    let grouped_dir = temp_dir("grouped");
    let grouped = latent(
        &[
            &args[..],
            &["--backend", &backend, "--weight-grads", "grouped"],
            &["--out", grouped_dir.to_str().unwrap()],
        ]
        .concat(),
    );
    assert!(
        gpu.status.success() && cpu.status.success() && grouped.status.success(),
        "{}\n{}\n{}",
        text(&gpu.stderr),
        text(&cpu.stderr),
        text(&grouped.stderr)
    );
    // The step's line says how it computes the weight gradients.
    let (gpu_out, grouped_out) = (text(&gpu.stdout), text(&grouped.stdout));
    assert!(
        gpu_out.contains("dispatches a step (weight gradients separate)"),
        "{gpu_out}"
    );
    assert!(
        grouped_out.contains("10 dispatches a step (weight gradients grouped, Adam fused)"),
        "{grouped_out}"
    );
    // And what the GPU's buffers hold: with Adam fused, no gradient buffer.
    assert!(gpu_out.contains("device memory "), "{gpu_out}");
    assert!(grouped_out.contains(", gradients 0.0, "), "{grouped_out}");
    assert!(!text(&cpu.stdout).contains("device memory"));
    let c = csv_rows(&cpu_dir.join("loss.csv"));
    for dir in [&gpu_dir, &grouped_dir] {
        let g = csv_rows(&dir.join("loss.csv"));
        for col in 1..3 {
            let (g, c): (f64, f64) = (g[1][col].parse().unwrap(), c[1][col].parse().unwrap());
            assert!(
                (g - c).abs() <= 1e-4 * c.abs(),
                "{} column {col}: gpu {g} cpu {c}",
                dir.display()
            );
        }
    }
    // config.json says where each trained: the adapter and its matmul, or the CPU twins.
    let on = |dir: &std::path::Path| latent::io::checkpoint::load_record(dir).unwrap().trained_on;
    let gpu_on = on(&gpu_dir);
    assert!(
        gpu_on.contains("matmul") && !gpu_on.contains("CPU twins"),
        "{gpu_on}"
    );
    assert!(
        on(&cpu_dir).starts_with("CPU twins (f32; matmul in "),
        "{}",
        on(&cpu_dir)
    );
    let _ = (
        std::fs::remove_dir_all(&gpu_dir),
        std::fs::remove_dir_all(&cpu_dir),
        std::fs::remove_dir_all(&grouped_dir),
    );
}

#[test]
fn bad_training_input_is_exit_code_2_with_a_clear_message() {
    let dir = temp_dir("bad");
    std::fs::create_dir_all(&dir).unwrap();
    let ragged = dir.join("ragged.csv");
    std::fs::write(&ragged, "1,2,3\n4,5\n").unwrap();
    let unlabelled = dir.join("unlabelled.csv");
    std::fs::write(&unlabelled, "0.1,0.2,0.3\n".repeat(20)).unwrap();
    let cases: [(&[&str], &str); 18] = [
        (
            &["--data", "digits", "--linear-code"],
            "a linear code is for autoencoders",
        ),
        (
            &["--data", "digits", "--objective", "iwae", "--k", "0"],
            "K ≥ 1",
        ),
        (
            &["--data", "digits", "--matmul", "coop-f16"],
            "--cpu asks for the CPU path",
        ),
        (
            &["--data", "digits", "--objective", "mle"],
            "expected elbo or iwae",
        ),
        (&["--data", "digits", "--noise", "gaussian:-1"], "σ must be"),
        (&["--data", "digits", "--noise", "masking:1.5"], "[0, 1]"),
        (&["--data", "digits", "--noise", "blur:3"], "unknown kind"),
        (
            &[
                "--data",
                "digits",
                "--model",
                "sparse",
                "--sparsity",
                "kl:0:1",
            ],
            "strictly between 0 and 1",
        ),
        (
            &["--data", "digits", "--sparsity", "l1:0.1"],
            "for autoencoders",
        ),
        (
            &["--data", unlabelled.to_str().unwrap(), "--model", "cvae"],
            "needs labels",
        ),
        (&["--data", "digits", "--batch", "5000"], "batch size 5000"),
        (&["--data", "digits", "--lr", "0"], "lr > 0"),
        (&["--data", "digits", "--latent", "0"], "at least 1"),
        (
            &["--data", "digits", "--epochs", "0"],
            "epochs must be at least 1",
        ),
        (&["--data", "digits", "--model", "gan"], "unknown model"),
        (
            &["--data", "digits", "--model", "cvae", "--classes", "5"],
            "the model knows classes 0..4",
        ),
        (&["--data", ragged.to_str().unwrap()], "line 2"),
        (
            &["--data", "mnist", "--data-dir", dir.to_str().unwrap()],
            "train-images-idx3-ubyte",
        ),
    ];
    for (extra, message) in cases {
        let out_dir = dir.join("out");
        let out = latent(
            &[
                &["train", "--cpu", "--out", out_dir.to_str().unwrap()][..],
                extra,
            ]
            .concat(),
        );
        assert_eq!(
            out.status.code(),
            Some(2),
            "{extra:?}: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stderr).contains(message),
            "{extra:?}: {:?} lacks {message:?}",
            text(&out.stderr)
        );
        assert!(
            !out_dir.join("model.safetensors").exists(),
            "{extra:?}: a checkpoint was written"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn encode_reconstruct_and_sample_write_their_files() {
    let dir = temp_dir("use");
    let dir_arg = dir.to_str().unwrap();
    let trained = latent(&[
        "train", "--cpu", "--data", "digits", "--hidden", "32", "--latent", "3", "--epochs", "1",
        "--out", dir_arg,
    ]);
    assert!(trained.status.success(), "{}", text(&trained.stderr));
    let run = |args: &[&str]| {
        let out = latent(
            &[
                args,
                &["--cpu", "--data", "digits", "--checkpoint", dir_arg],
            ]
            .concat(),
        );
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
    };
    run(&["encode"]);
    run(&["encode", "--out", dir.join("codes.npy").to_str().unwrap()]);
    // eval reports the test loss the last training epoch logged (same rows, same noise),
    // on the run's own data set without --data (where MNIST is found too).
    let eval = latent(&["eval", "--cpu", "--checkpoint", dir_arg]);
    let logged: f64 = csv_rows(&dir.join("loss.csv"))[1][2].parse().unwrap();
    let printed = text(&eval.stdout);
    let value: f64 = printed
        .split("test loss ")
        .nth(1)
        .and_then(|t| t.split(' ').next())
        .and_then(|v| v.parse().ok())
        .expect(&printed);
    assert!(
        (value - logged).abs() < 1e-3,
        "eval {value} vs logged {logged}"
    );
    run(&["reconstruct", "--n", "6"]);
    // decode the encoded codes back: as rows (CSV in, .npy out) and as a picture.
    for (codes, out) in [("codes.csv", "decoded.npy"), ("codes.npy", "decoded.png")] {
        let decode = latent(&[
            "decode",
            "--cpu",
            "--checkpoint",
            dir_arg,
            "--codes",
            dir.join(codes).to_str().unwrap(),
            "--out",
            dir.join(out).to_str().unwrap(),
        ]);
        assert!(decode.status.success(), "{}", text(&decode.stderr));
    }
    let decoded = std::fs::read(dir.join("decoded.npy")).unwrap();
    let header_len = u16::from_le_bytes([decoded[8], decoded[9]]) as usize;
    assert!(String::from_utf8_lossy(&decoded[10..10 + header_len]).contains("'shape': (180, 64)"));
    assert_eq!(
        &std::fs::read(dir.join("decoded.png")).unwrap()[..4],
        b"\x89PNG"
    );
    let wrong = latent(&[
        "decode",
        "--cpu",
        "--checkpoint",
        dir_arg,
        "--codes",
        dir.join("loss.csv").to_str().unwrap(),
    ]);
    assert_eq!(
        wrong.status.code(),
        Some(2),
        "codes of the wrong width: {}",
        text(&wrong.stderr)
    );
    run(&["sample", "--n", "9"]);
    // 10^13 samples of 67 floats hold no host: refused before any is drawn.
    let huge = latent(&[
        "sample",
        "--cpu",
        "--checkpoint",
        dir_arg,
        "--n",
        "10000000000000",
        "--out",
        dir.join("huge.npy").to_str().unwrap(),
    ]);
    assert_eq!(huge.status.code(), Some(1), "{}", text(&huge.stderr));
    assert!(
        text(&huge.stderr)
            .contains("10000000000000 samples: 2680000000000000 bytes of host memory"),
        "{}",
        text(&huge.stderr)
    );
    assert!(!dir.join("huge.npy").exists());

    // CSV: header and one row of 3 codes per test row (10 % of 1,797 digits: 180).
    let rows = csv_rows(&dir.join("codes.csv"));
    assert_eq!(rows.len(), 1 + 180);
    assert!(rows[1..]
        .iter()
        .all(|r| r.len() == 3 && r.iter().all(|v| v.parse::<f32>().is_ok())));
    // .npy: NumPy's magic, a (180, 3) shape, 180 * 3 little-endian floats after the header.
    let npy = std::fs::read(dir.join("codes.npy")).unwrap();
    assert_eq!(&npy[..8], b"\x93NUMPY\x01\x00");
    let header_len = u16::from_le_bytes([npy[8], npy[9]]) as usize;
    assert!(String::from_utf8_lossy(&npy[10..10 + header_len]).contains("'shape': (180, 3)"));
    assert_eq!(npy.len(), 10 + header_len + 180 * 3 * 4);
    // PNGs: the signature and the grid's size (8×8 digits with a 2-pixel gap).
    for (file, width, height) in [
        ("reconstructions.png", 6 * 10 + 2, 2 * 10 + 2),
        ("samples.png", 3 * 10 + 2, 3 * 10 + 2),
    ] {
        let png = std::fs::read(dir.join(file)).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{file}");
        let (w, h) = (
            u32::from_be_bytes(png[16..20].try_into().unwrap()),
            u32::from_be_bytes(png[20..24].try_into().unwrap()),
        );
        assert_eq!((w, h), (width, height), "{file}");
    }
    // An autoencoder has no prior to sample; a model of another width does not fit the data.
    let ae_dir = temp_dir("use-ae");
    let ae = latent(&[
        "train",
        "--cpu",
        "--data",
        "digits",
        "--model",
        "ae",
        "--latent",
        "8",
        "--epochs",
        "1",
        "--out",
        ae_dir.to_str().unwrap(),
    ]);
    assert!(ae.status.success(), "{}", text(&ae.stderr));
    let out = latent(&[
        "sample",
        "--cpu",
        "--data",
        "digits",
        "--checkpoint",
        ae_dir.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("needs a VAE"),
        "{}",
        text(&out.stderr)
    );
    let _ = (
        std::fs::remove_dir_all(&dir),
        std::fs::remove_dir_all(&ae_dir),
    );
}

#[test]
fn train_refuses_an_output_it_cannot_end_in_before_training() {
    let dir = temp_dir("out_checks");
    std::fs::create_dir_all(dir.join("run")).unwrap();
    std::fs::write(dir.join("file"), "not a directory").unwrap();
    std::fs::write(dir.join("run").join("config.json"), "{}").unwrap();
    let cases = [
        ("file", "exists and is not a directory"),
        ("run", "already holds a run: `--resume"),
    ];
    for (out, message) in cases {
        let out_dir = dir.join(out);
        let args = [
            "train", "--cpu", "--data", "digits", "--epochs", "1", "--out",
        ];
        let out = latent(&[&args[..], &[out_dir.to_str().unwrap()]].concat());
        assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
        assert!(text(&out.stderr).contains(message), "{}", text(&out.stderr));
        assert!(!text(&out.stdout).contains("epoch 1/1"), "it trained first");
    }
    assert!(!dir.join("run").join("model.safetensors").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_model_too_large_for_the_host_is_an_error_not_an_abort() {
    // 2·10^14 parameters: 800 TB, beyond any address space, so the allocation fails anywhere.
    let dir = temp_dir("huge");
    let mut devices = vec![vec!["--cpu"]];
    if let Some(ctx) = common::gpu("a_model_too_large_for_the_host_is_an_error_not_an_abort") {
        devices.push(vec!["--backend", ctx.info.backend.to_str()]);
    }
    for device in devices {
        let args = [
            "train",
            "--data",
            "digits",
            "--hidden",
            "10000000,10000000",
            "--out",
            dir.to_str().unwrap(),
        ];
        let out = latent(&[&args[..], &device[..]].concat());
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
        assert!(
            text(&out.stderr).contains("parameters: 800007680000512 bytes of host memory"),
            "{}",
            text(&out.stderr)
        );
        assert!(!dir.exists(), "{device:?}: the run directory was created");
    }
}

#[test]
fn a_diverging_run_stops_with_a_clear_message_and_writes_nothing() {
    let dir = temp_dir("diverge");
    // Adam at lr 1e4 sends the VAE's logvar so high that e^logvar overflows within 10 steps.
    let out = latent(&[
        "train",
        "--cpu",
        "--data",
        "digits",
        "--lr",
        "1e4",
        "--epochs",
        "3",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("the loss became"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        !dir.join("model.safetensors").exists(),
        "a diverged epoch was checkpointed"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn denoising_sparse_and_conditional_models_train_and_are_put_to_work() {
    let dir = temp_dir("family");
    let run = |model: &str, extra: &[&str]| {
        let out_dir = dir.join(model);
        let args = [
            &[
                "train",
                "--cpu",
                "--data",
                "digits",
                "--model",
                model,
                "--hidden",
                "32",
                "--latent",
                "8",
                "--epochs",
                "2",
                "--out",
                out_dir.to_str().unwrap(),
            ][..],
            extra,
        ]
        .concat();
        let out = latent(&args);
        assert!(out.status.success(), "train {model}: {}", text(&out.stderr));
        out_dir
    };
    let use_model = |args: &[&str]| {
        let out = latent(args);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        text(&out.stdout)
    };
    // Denoising: the noise is the model's own unless given.
    let dae = run("dae", &["--noise", "masking:0.3"]);
    let dae_arg = dae.to_str().unwrap();
    let printed = use_model(&[
        "denoise",
        "--cpu",
        "--data",
        "digits",
        "--checkpoint",
        dae_arg,
    ]);
    assert!(
        printed.contains("masking:0.3") && printed.contains("denoised MSE"),
        "{printed}"
    );
    assert!(dae.join("denoised.png").exists());
    // Sparse: eval reports the code's sparsity.
    let sparse = run("sparse", &["--sparsity", "kl:0.05:0.01"]);
    let printed = use_model(&[
        "eval",
        "--cpu",
        "--data",
        "digits",
        "--checkpoint",
        sparse.to_str().unwrap(),
    ]);
    assert!(
        printed.contains("sparsity") && printed.contains("near zero"),
        "{printed}"
    );
    // IWAE: the bound is the reported loss.
    let out = latent(&[
        "train",
        "--cpu",
        "--data",
        "digits",
        "--objective",
        "iwae",
        "--k",
        "3",
        "--hidden",
        "16",
        "--latent",
        "4",
        "--epochs",
        "1",
        "--out",
        dir.join("iwae").to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("iw "), "{}", text(&out.stdout));
    // Conditional: a grid with one row per class, one class, and the anomaly scores.
    let cvae = run("cvae", &[]);
    let cvae_arg = cvae.to_str().unwrap();
    let printed = use_model(&[
        "sample",
        "--cpu",
        "--data",
        "digits",
        "--checkpoint",
        cvae_arg,
        "--n",
        "4",
    ]);
    assert!(printed.contains("one row per class 0..9"), "{printed}");
    let png = std::fs::read(cvae.join("samples.png")).unwrap();
    let info = png::Decoder::new(std::io::Cursor::new(png))
        .read_info()
        .unwrap()
        .info()
        .clone();
    // 4 columns and 10 rows of 8×8 digits (plus the grid's gaps).
    assert!(
        info.width >= 4 * 8 && info.height >= 10 * 8 && info.height > info.width,
        "{}x{}",
        info.width,
        info.height
    );
    let out = latent(&[
        "sample",
        "--cpu",
        "--data",
        "digits",
        "--checkpoint",
        cvae_arg,
        "--label",
        "10",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let printed = use_model(&[
        "score",
        "--cpu",
        "--data",
        "digits",
        "--checkpoint",
        cvae_arg,
    ]);
    assert!(printed.contains("negative ELBO"), "{printed}");
    let scores = csv_rows(&cvae.join("scores.csv"));
    assert_eq!(
        scores[0],
        ["row", "reconstruction_mse", "negative_elbo", "flagged"]
    );
    assert!(scores.len() > 100, "one row per test row");
    // The importance-weighted bound, the codes probed and the latent space drawn.
    let printed = use_model(&[
        "eval",
        "--cpu",
        "--data",
        "digits",
        "--checkpoint",
        cvae_arg,
        "--iw",
        "5",
    ]);
    assert!(
        printed.contains("importance-weighted bound, K = 5") && printed.contains("bits/dim"),
        "{printed}"
    );
    let json = dir.join("probe.json");
    let printed = use_model(&[
        "probe",
        "--cpu",
        "--data",
        "digits",
        "--checkpoint",
        dae_arg,
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(
        printed.contains("kNN-1") && printed.contains("pca-8 of pixels"),
        "{printed}"
    );
    assert!(std::fs::read_to_string(&json).unwrap().contains("knn1"));
    use_model(&[
        "scatter",
        "--cpu",
        "--data",
        "digits",
        "--checkpoint",
        dae_arg,
    ]);
    use_model(&[
        "interpolate",
        "--cpu",
        "--data",
        "digits",
        "--checkpoint",
        cvae_arg,
        "--pairs",
        "3",
    ]);
    use_model(&[
        "traverse",
        "--cpu",
        "--data",
        "digits",
        "--checkpoint",
        cvae_arg,
        "--dims",
        "0,7",
    ]);
    for (run, file) in [
        (&dae, "scatter.png"),
        (&cvae, "interpolation.png"),
        (&cvae, "traversal.png"),
    ] {
        let bytes = std::fs::read(run.join(file)).unwrap();
        assert!(
            png::Decoder::new(std::io::Cursor::new(bytes))
                .read_info()
                .is_ok(),
            "{file}"
        );
    }
    // Bad input to the new commands: exit code 2, nothing written.
    for bad in [
        &["eval", "--iw", "0", "--checkpoint", cvae_arg][..],
        &["eval", "--iw", "5", "--checkpoint", dae_arg],
        &["traverse", "--dims", "8", "--checkpoint", cvae_arg],
        &["interpolate", "--path", "curved", "--checkpoint", cvae_arg],
    ] {
        let out = latent(&[bad, &["--cpu", "--data", "digits"]].concat());
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {}", text(&out.stderr));
    }
    let narrow = dir.join("narrow.csv");
    std::fs::write(&narrow, "0.1,0.2\n0.3,0.4\n").unwrap();
    let bad_out = dir.join("bad.csv");
    let out = latent(&[
        "score",
        "--cpu",
        "--data",
        "digits",
        "--checkpoint",
        cvae_arg,
        narrow.to_str().unwrap(),
        "--out",
        bad_out.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("narrow.csv: rows of 2 values; the model takes 64"),
        "{}",
        text(&out.stderr)
    );
    assert!(!bad_out.exists());
    let out = latent(&[
        "denoise",
        "--cpu",
        "--data",
        "digits",
        "--checkpoint",
        dae_arg,
        "--noise",
        "sp:2",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let _ = std::fs::remove_dir_all(&dir);
}

/// The conditional VAE's bench config trains on the data's labels: run where no MNIST is
/// found, on the synthetic rows and their synthetic labels. Its step, and the denoising
/// autoencoder's: the dispatches of their plans (tests/train.rs counts them).
#[test]
fn bench_times_the_conditional_vae_on_synthetic_rows() {
    use latent::bench::TrainConfig;
    if common::gpu("bench_times_the_conditional_vae_on_synthetic_rows").is_none() {
        return;
    }
    let dir = temp_dir("bench-cvae");
    std::fs::create_dir_all(&dir).unwrap();
    let matmul = std::env::var("LATENT_MATMUL").unwrap_or_else(|_| "default".into());
    let out = Command::new(env!("CARGO_BIN_EXE_latent"))
        .current_dir(&dir)
        .env_remove("LATENT_DATA_DIR")
        .env("LATENT_MATMUL", matmul)
        .args([
            "bench",
            "--no-kernels",
            "--configs",
            "cvae,dae,sparse",
            "--steps",
            "1",
            "--steps-per-submit",
            "1",
            "--json",
            "bench.json",
        ])
        .output()
        .expect("run latent");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("bench.json")).unwrap()).unwrap();
    assert_eq!(report["data"], "synthetic", "{report}");
    for (step, config) in report["steps"].as_array().unwrap().iter().zip([
        TrainConfig::Cvae,
        TrainConfig::Dae,
        TrainConfig::Sparse,
    ]) {
        assert_eq!(step["config"], config.name(), "{report}");
        let graph = config.model().build(config.batch()).unwrap().0;
        let plan = latent::graph::plan::Plan::compile(graph).unwrap();
        assert_eq!(
            step["dispatches_per_step"],
            plan.dispatches_per_step(),
            "{report}"
        );
    }
    assert_eq!(report["steps"].as_array().unwrap().len(), 3, "{report}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--max-storage-buffers 8` (WebGPU's default) asks the device for 8 storage buffers a
/// stage: the IWAE's bound then runs apart from its loss (two dispatches more than its
/// plan's fused step), and the report says how many the device binds.
#[test]
fn bench_with_fewer_storage_buffers_runs_the_forms_that_bind_fewer() {
    use latent::bench::TrainConfig;
    let test = "bench_with_fewer_storage_buffers_runs_the_forms_that_bind_fewer";
    if common::gpu(test).is_none() {
        return;
    }
    let dir = temp_dir("bench-storage");
    std::fs::create_dir_all(&dir).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_latent"))
        .current_dir(&dir)
        .env_remove("LATENT_DATA_DIR")
        .args([
            "bench",
            "--no-kernels",
            "--configs",
            "iwae",
            "--steps",
            "1",
            "--steps-per-submit",
            "1",
            "--max-storage-buffers",
            "8",
            "--json",
            "bench.json",
        ])
        .output()
        .expect("run latent");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("storage buffers/stage 8;"),
        "{}",
        text(&out.stdout)
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("bench.json")).unwrap()).unwrap();
    assert_eq!(report["device"]["storage_buffers_per_stage"], 8, "{report}");
    let config = TrainConfig::Iwae;
    let plan = latent::graph::plan::Plan::compile(config.model().build(config.batch()).unwrap().0)
        .unwrap();
    assert_eq!(
        report["steps"][0]["dispatches_per_step"],
        plan.dispatches_per_step() + 2,
        "{report}"
    );
    let out = latent(&["bench", "--max-storage-buffers", "eight"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bench_writes_step_figures_as_json() {
    if common::gpu("bench_writes_step_figures_as_json").is_none() {
        return;
    }
    let dir = temp_dir("bench");
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("bench.json");
    let out = latent(&[
        "bench",
        "--no-kernels",
        "--configs",
        "ae",
        "--steps",
        "2",
        "--steps-per-submit",
        "1,2",
        "--breakdown",
        "--cpu",
        "--unchecked-kernels",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    for key in ["device", "date", "commit", "matmul", "data"] {
        assert!(!report[key].is_null(), "{key} missing: {report}");
    }
    // --unchecked-kernels: said on the terminal and in the report.
    assert_eq!(report["device"]["runtime_checks"], false, "{report}");
    assert!(text(&out.stdout).contains("runtime checks: off"));
    assert!(text(&out.stderr).contains("without wgpu's runtime checks"));
    // --cpu: the CPU twins' step too, and which tiles and threads ran it.
    let cpu_path = report["cpu_path"].as_str().unwrap_or_default();
    assert!(
        cpu_path.starts_with("CPU twins (f32; matmul in "),
        "{report}"
    );
    let steps = report["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 3, "{report}");
    assert_eq!(steps[2]["executor"], "cpu", "{report}");
    assert!(steps[2]["step_ms"].as_f64().is_some_and(|ms| ms > 0.0));
    for (figure, per_submit) in steps.iter().zip([1, 2]) {
        assert_eq!(figure["config"], "ae-784-256-784");
        assert_eq!(figure["steps_per_submit"], per_submit);
        // Gather, encoder, decoder with the MSE and its gradient in its store; dW+db and
        // dx·ReLU' of the decoder, dW+db of the encoder; Adam (tests/train.rs).
        assert_eq!(figure["dispatches_per_step"], 7);
        for key in [
            "step_ms",
            "encode_us",
            "submit_us",
            "idle_encode_us",
            "idle_submit_us",
            "warm_encode_us",
            "device_mib",
            "activations_mib",
            "mbyte_per_step",
        ] {
            assert!(
                figure[key].as_f64().is_some_and(|v| v > 0.0),
                "{key}: {figure}"
            );
        }
    }
    // The breakdown: each of the step's dispatches timed alone, in the step's order.
    let breakdown = report["breakdown"].as_array().unwrap();
    let kernels: Vec<&str> = breakdown
        .iter()
        .map(|d| d["kernel"].as_str().unwrap())
        .collect();
    assert_eq!(kernels.len(), 7, "{kernels:?}");
    // 784-byte rows: a word of four bytes a thread.
    assert_eq!(kernels[0], "gather_u8_words");
    assert!(
        kernels[1..6].iter().all(|k| k.starts_with("matmul")),
        "{kernels:?}"
    );
    assert_eq!(kernels[6], "adam_step_vec4");
    assert!(breakdown
        .iter()
        .all(|d| d["gpu_us"].as_f64().is_some_and(|us| us > 0.0)));
    // The step's traffic is its dispatches' (tests/train.rs counts them by hand).
    let bytes: u64 = breakdown.iter().map(|d| d["bytes"].as_u64().unwrap()).sum();
    let step_mb = steps[0]["mbyte_per_step"].as_f64().unwrap();
    assert!(
        (bytes as f64 / 1e6 - step_mb).abs() < 1e-9,
        "{bytes} {step_mb}"
    );
    // With --cpu, each part of the CPU step too: the gather, the AE's four forward ops, the
    // loss sums, its four backward ops, Adam; GFLOP/s on the four linear parts.
    let cpu_parts = report["cpu_breakdown"].as_array().unwrap();
    let parts: Vec<&str> = cpu_parts
        .iter()
        .map(|p| p["part"].as_str().unwrap())
        .collect();
    assert_eq!(parts.len(), 11, "{parts:?}");
    assert_eq!(
        (parts[0], parts[5], parts[10]),
        ("gather", "loss sums", "adam")
    );
    assert!(cpu_parts
        .iter()
        .all(|p| p["us"].as_f64().is_some_and(|us| us > 0.0)));
    let rated = cpu_parts
        .iter()
        .filter(|p| p["gflop_per_s"].as_f64().is_some());
    assert_eq!(rated.count(), 4, "{parts:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_bench_input_is_exit_code_2() {
    for (args, message) in [
        (&["bench", "--configs", "huge"][..], "bench config \"huge\""),
        (&["bench", "--steps-per-submit", "0"][..], "at least 1"),
        (&["bench", "--matmul", "fast"][..], "matmul policy \"fast\""),
    ] {
        let out = latent(args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stderr).contains(message),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
}

/// LATENT_THREADS sets the CPU path's threads, and the trained weights do not depend on
/// them (1 thread, and 3, more than CI's cores); a value that is not a whole number ≥ 1
/// is refused before any work.
#[test]
fn latent_threads_sets_the_cpu_threads_and_the_weights_do_not_depend_on_it() {
    let dir = temp_dir("threads");
    let train = |threads: &str| {
        let out = dir.join(format!("run-{threads}"));
        let output = Command::new(env!("CARGO_BIN_EXE_latent"))
            .args([
                "train", "--cpu", "--data", "digits", "--epochs", "1", "--out",
            ])
            .arg(&out)
            .env("LATENT_THREADS", threads)
            .output()
            .expect("run latent");
        (output, out.join("model.safetensors"))
    };
    let (one, one_weights) = train("1");
    assert!(one.status.success(), "{}", text(&one.stderr));
    let said = format!("{}{}", text(&one.stdout), text(&one.stderr));
    assert!(said.contains("tiles, 1 thread)"), "{said}");
    let (three, three_weights) = train("3");
    assert!(three.status.success(), "{}", text(&three.stderr));
    let said = format!("{}{}", text(&three.stdout), text(&three.stderr));
    assert!(said.contains("tiles, 3 threads)"), "{said}");
    assert!(
        std::fs::read(&one_weights).unwrap() == std::fs::read(&three_weights).unwrap(),
        "1 thread and 3 trained different weights"
    );
    for bad in ["0", "two", "-1", "4097"] {
        let (refused, weights) = train(bad);
        assert_eq!(refused.status.code(), Some(2), "LATENT_THREADS={bad}");
        assert!(
            text(&refused.stderr).contains(&format!("LATENT_THREADS={bad}: expected")),
            "{}",
            text(&refused.stderr)
        );
        assert!(!weights.exists());
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
