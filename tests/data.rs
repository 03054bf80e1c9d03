//! Data loading on the CPU: MNIST (gzipped and raw IDX, and every IDX error), the embedded
//! UCI digits, CSV (header, label column, the three scaling rules, every error with its
//! line), NumPy .npy (u1, f4, f8, i4; versions 1.0 and 2.0; errors), splits, epoch orders and
//! batch checks.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use latent::data::{
    self, epoch_order, load_csv, load_digits, load_mnist, load_npy, mnist_dir, CsvOptions, Dataset,
    Pixels, Scaling,
};
use latent::Error;

const MNIST_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data/mnist");
const MNIST_FILES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

// ---------------------------------------------------------------------------------------
// Helpers

/// A fresh directory under the system temp dir, removed when dropped (also on panic).
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "latent-data-test-{name}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, bytes).expect("write temp file");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// (origin, message) of an Error::Data; panics with the error otherwise.
fn data_error<T: std::fmt::Debug>(result: latent::Result<T>) -> (String, String) {
    match result {
        Err(Error::Data { origin, message }) => (origin, message),
        other => panic!("expected Error::Data, got {other:?}"),
    }
}

fn assert_contains(text: &str, parts: &[&str]) {
    for part in parts {
        assert!(text.contains(part), "{text:?} does not contain {part:?}");
    }
}

fn f32_values(dataset: &Dataset) -> &[f32] {
    match &dataset.pixels {
        Pixels::F32(values) => values,
        Pixels::U8(_) => panic!("{} holds bytes, expected f32", dataset.name),
    }
}

fn label_counts(labels: &[u8]) -> [usize; 10] {
    let mut counts = [0; 10];
    for &label in labels {
        counts[label as usize] += 1;
    }
    counts
}

/// An IDX file: big-endian magic and dimensions, then the bytes.
fn idx(magic: u32, dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut bytes = magic.to_be_bytes().to_vec();
    for dim in dims {
        bytes.extend(dim.to_be_bytes());
    }
    bytes.extend_from_slice(data);
    bytes
}

fn idx_images(count: u32, height: u32, width: u32) -> Vec<u8> {
    let data: Vec<u8> = (0..count * height * width)
        .map(|i| (i * 37 % 256) as u8)
        .collect();
    idx(0x803, &[count, height, width], &data)
}

fn idx_labels(labels: &[u8]) -> Vec<u8> {
    idx(0x801, &[labels.len() as u32], labels)
}

/// A small, valid MNIST directory: 3 training and 2 test images of 2×3, all files raw.
fn small_mnist(name: &str) -> TempDir {
    let dir = TempDir::new(name);
    dir.write("train-images-idx3-ubyte", &idx_images(3, 2, 3));
    dir.write("train-labels-idx1-ubyte", &idx_labels(&[4, 0, 9]));
    dir.write("t10k-images-idx3-ubyte", &idx_images(2, 2, 3));
    dir.write("t10k-labels-idx1-ubyte", &idx_labels(&[1, 2]));
    dir
}

/// A .npy version 1.0 file: magic, version, u16 header length, the dict padded with spaces
/// and ending in '\n' so that the whole header is a multiple of 64 bytes, then the data.
fn npy(descr: &str, fortran_order: bool, shape: &str, data: &[u8]) -> Vec<u8> {
    npy_version(1, descr, fortran_order, shape, data)
}

fn npy_version(major: u8, descr: &str, fortran_order: bool, shape: &str, data: &[u8]) -> Vec<u8> {
    let fortran = if fortran_order { "True" } else { "False" };
    let mut dict =
        format!("{{'descr': '{descr}', 'fortran_order': {fortran}, 'shape': {shape}, }}");
    let length_bytes = if major == 1 { 2 } else { 4 };
    let preamble = 6 + 2 + length_bytes;
    while (preamble + dict.len() + 1) % 64 != 0 {
        dict.push(' ');
    }
    dict.push('\n');
    let mut bytes = b"\x93NUMPY".to_vec();
    bytes.extend([major, 0]);
    if major == 1 {
        bytes.extend((dict.len() as u16).to_le_bytes());
    } else {
        bytes.extend((dict.len() as u32).to_le_bytes());
    }
    assert_eq!((bytes.len() + dict.len()) % 64, 0);
    bytes.extend(dict.as_bytes());
    bytes.extend_from_slice(data);
    bytes
}

fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn f64_bytes(values: &[f64]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// 200 rows of 2 values; row r has label r and values (r / 200, 1 - r / 200).
fn numbered(rows: usize) -> Dataset {
    let values = (0..rows)
        .flat_map(|r| {
            let x = r as f32 / rows as f32;
            [x, 1.0 - x]
        })
        .collect();
    let labels = (0..rows).map(|r| r as u8).collect();
    Dataset::new(
        "numbered",
        2,
        Pixels::F32(values),
        Some(labels),
        None,
        Scaling::None,
    )
    .unwrap()
}

// ---------------------------------------------------------------------------------------
// MNIST

#[test]
fn mnist_loads_with_known_counts_and_mean() {
    let (train, test) = load_mnist(Path::new(MNIST_DIR)).unwrap();
    assert_eq!((train.rows, train.width), (60_000, 784));
    assert_eq!((test.rows, test.width), (10_000, 784));
    assert_eq!(train.image_shape, Some((28, 28)));
    assert_eq!(test.image_shape, Some((28, 28)));
    assert_eq!(train.scaling, Scaling::Divide(255.0));
    assert_eq!(
        (train.name.as_str(), test.name.as_str()),
        ("mnist-train", "mnist-test")
    );

    let train_labels = train.labels.as_ref().unwrap();
    let test_labels = test.labels.as_ref().unwrap();
    assert!(train_labels.iter().chain(test_labels).all(|&l| l <= 9));
    // The well-known class counts of MNIST, and its first labels (5 and 7).
    assert_eq!(
        label_counts(train_labels),
        [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    );
    assert_eq!(
        label_counts(test_labels),
        [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    );
    assert_eq!(label_counts(train_labels).iter().sum::<usize>(), 60_000);
    assert_eq!((train_labels[0], test_labels[0]), (5, 7));

    // The well-known mean pixel of the training set (the 0.1307 of every MNIST normalisation).
    let Pixels::U8(bytes) = &train.pixels else {
        panic!("MNIST pixels should be bytes");
    };
    let mean = bytes.iter().map(|&b| f64::from(b)).sum::<f64>() / (bytes.len() as f64 * 255.0);
    assert!((mean - 0.1307).abs() < 1e-3, "mean pixel {mean}");

    // value, row_f32 and to_f32 read the bytes as byte / 255.
    let row = train.row_f32(0);
    assert_eq!(row.len(), 784);
    let brightest = (0..784).max_by_key(|&c| bytes[c]).unwrap();
    assert_eq!(row[brightest], f32::from(bytes[brightest]) / 255.0);
    assert_eq!(train.value(0, brightest), row[brightest]);
    assert!(row[brightest] > 0.9);
    assert_eq!(&train.to_f32()[..784], &row[..]);
}

#[test]
fn mnist_raw_files_load_like_gzipped_ones() {
    let dir = TempDir::new("mnist-raw");
    for name in MNIST_FILES {
        let compressed = std::fs::read(Path::new(MNIST_DIR).join(format!("{name}.gz"))).unwrap();
        dir.write(name, &gunzip(&compressed));
    }
    let (raw_train, raw_test) = load_mnist(&dir.0).unwrap();
    let (train, test) = load_mnist(Path::new(MNIST_DIR)).unwrap();
    assert_eq!(raw_train.rows, 60_000);
    assert!(raw_train == train, "raw and gzipped training sets differ");
    assert!(raw_test == test, "raw and gzipped test sets differ");
}

#[test]
fn mnist_dir_prefers_explicit_and_finds_shared() {
    let explicit = Path::new("/nowhere/mnist");
    assert_eq!(mnist_dir(Some(explicit)), Some(explicit.to_path_buf()));
    // Tests run in the crate root, so ../shared/data/mnist holds the files.
    if std::env::var_os(data::idx::DATA_DIR_ENV).is_none() {
        assert_eq!(mnist_dir(None), Some(PathBuf::from("../shared/data/mnist")));
    }
}

#[test]
fn small_idx_files_load_exactly() {
    let dir = small_mnist("idx-good");
    // One file gzipped: raw and .gz mix.
    let labels = std::fs::read(dir.0.join("t10k-labels-idx1-ubyte")).unwrap();
    std::fs::remove_file(dir.0.join("t10k-labels-idx1-ubyte")).unwrap();
    dir.write("t10k-labels-idx1-ubyte.gz", &gzip(&labels));

    let (train, test) = load_mnist(&dir.0).unwrap();
    assert_eq!(
        (train.rows, train.width, train.image_shape),
        (3, 6, Some((2, 3)))
    );
    assert_eq!((test.rows, test.width), (2, 6));
    assert_eq!(train.labels, Some(vec![4, 0, 9]));
    assert_eq!(test.labels, Some(vec![1, 2]));
    let expected: Vec<u8> = (0..18u32).map(|i| (i * 37 % 256) as u8).collect();
    assert_eq!(train.pixels, Pixels::U8(expected.clone()));
    assert_eq!(train.value(2, 5), f32::from(expected[17]) / 255.0);
}

#[test]
fn idx_wrong_magic_names_the_file() {
    let dir = small_mnist("idx-magic");
    let mut bytes = idx_images(3, 2, 3);
    bytes[3] = 0x01;
    dir.write("train-images-idx3-ubyte", &bytes);
    let (origin, message) = data_error(load_mnist(&dir.0));
    assert_contains(&origin, &["train-images-idx3-ubyte"]);
    assert_contains(
        &message,
        &["magic number 0x00000801", "expected 0x00000803"],
    );

    // A gzipped file without the .gz name gets a hint.
    dir.write("train-images-idx3-ubyte", &gzip(&idx_images(3, 2, 3)));
    let (_, message) = data_error(load_mnist(&dir.0));
    assert_contains(&message, &["gzip"]);
}

#[test]
fn idx_truncated_or_overlong_file_is_refused() {
    let dir = small_mnist("idx-truncated");
    let mut bytes = idx_images(3, 2, 3);
    bytes.pop();
    dir.write("train-images-idx3-ubyte", &bytes);
    let (origin, message) = data_error(load_mnist(&dir.0));
    assert_contains(&origin, &["train-images-idx3-ubyte"]);
    assert_contains(&message, &["33 bytes", "expected 34", "truncated"]);

    bytes.extend([0, 0]);
    dir.write("train-images-idx3-ubyte", &bytes);
    let (_, message) = data_error(load_mnist(&dir.0));
    assert_contains(&message, &["35 bytes", "expected 34"]);

    // A header cut short.
    dir.write("train-images-idx3-ubyte", &bytes[..10]);
    let (origin, message) = data_error(load_mnist(&dir.0));
    assert_contains(&origin, &["train-images-idx3-ubyte"]);
    assert_contains(&message, &["10 bytes", "header"]);

    // A truncated gzip stream.
    let dir = small_mnist("idx-truncated-gz");
    std::fs::remove_file(dir.0.join("train-labels-idx1-ubyte")).unwrap();
    let compressed = gzip(&idx_labels(&[4, 0, 9]));
    dir.write(
        "train-labels-idx1-ubyte.gz",
        &compressed[..compressed.len() - 6],
    );
    let (origin, message) = data_error(load_mnist(&dir.0));
    assert_contains(&origin, &["train-labels-idx1-ubyte.gz"]);
    assert_contains(&message, &["gzip"]);
}

#[test]
fn idx_image_and_label_counts_must_agree() {
    let dir = small_mnist("idx-counts");
    dir.write("train-labels-idx1-ubyte", &idx_labels(&[4, 0]));
    let (origin, message) = data_error(load_mnist(&dir.0));
    assert_contains(&origin, &["train-labels-idx1-ubyte"]);
    assert_contains(
        &message,
        &["2 labels", "3 images", "train-images-idx3-ubyte"],
    );
}

#[test]
fn idx_label_above_nine_is_named_by_record() {
    let dir = small_mnist("idx-label");
    dir.write("t10k-labels-idx1-ubyte", &idx_labels(&[1, 10]));
    let (origin, message) = data_error(load_mnist(&dir.0));
    assert_contains(&origin, &["t10k-labels-idx1-ubyte record 1"]);
    assert_contains(&message, &["label 10", "0..=9"]);
}

#[test]
fn idx_missing_file_names_the_names_tried() {
    let dir = small_mnist("idx-missing");
    std::fs::remove_file(dir.0.join("t10k-labels-idx1-ubyte")).unwrap();
    match load_mnist(&dir.0) {
        Err(Error::Io { path, message }) => {
            assert_contains(&path, &["t10k-labels-idx1-ubyte"]);
            assert_contains(
                &message,
                &["t10k-labels-idx1-ubyte and", "t10k-labels-idx1-ubyte.gz"],
            );
        }
        other => panic!("expected Error::Io, got {other:?}"),
    }
    // An explicit directory is returned as it is; loading says what is missing.
    let empty = TempDir::new("idx-empty");
    assert_eq!(mnist_dir(Some(&empty.0)), Some(empty.0.clone()));
    let error = load_mnist(&empty.0).unwrap_err().to_string();
    assert_contains(&error, &["train-images-idx3-ubyte"]);
}

// ---------------------------------------------------------------------------------------
// Embedded digits

#[test]
fn digits_are_embedded_and_scaled() {
    let digits = load_digits().unwrap();
    assert_eq!(
        (digits.name.as_str(), digits.rows, digits.width),
        ("digits", 1797, 64)
    );
    assert_eq!(digits.image_shape, Some((8, 8)));
    assert_eq!(digits.scaling, Scaling::Divide(16.0));
    let labels = digits.labels.as_ref().unwrap();
    assert_eq!(
        label_counts(labels),
        [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    );
    let values = f32_values(&digits);
    assert!(values.iter().all(|v| (0.0..=1.0).contains(v)));
    assert!(values.contains(&1.0) && values.contains(&0.0));
    // The first digit is a 0 whose first row of pixels is 0,0,5,13,9,1,0,0.
    assert_eq!(labels[0], 0);
    let first_row: Vec<f32> = [0.0, 0.0, 5.0, 13.0, 9.0, 1.0, 0.0, 0.0]
        .iter()
        .map(|v| v / 16.0)
        .collect();
    assert_eq!(&digits.row_f32(0)[..8], &first_row[..]);
    assert!(data::DIGITS_ATTRIBUTION.contains("CC BY 4.0"));
    assert!(data::DIGITS_ATTRIBUTION.contains("Alpaydin"));
}

// ---------------------------------------------------------------------------------------
// CSV

#[test]
fn csv_with_header_and_label_column() {
    let dir = TempDir::new("csv-good");
    let path = dir.write(
        "points.csv",
        b"\xEF\xBB\xBFx, y ,label,z\r\n0.5, 0.25 ,3, 1\r\n0,1,7.0,0.75\n\n  \n",
    );
    let options = CsvOptions {
        label_column: Some(2),
    };
    let set = load_csv(&path, &options).unwrap();
    assert_eq!(
        (set.name.as_str(), set.rows, set.width),
        ("points.csv", 2, 3)
    );
    assert_eq!(set.labels, Some(vec![3, 7]));
    assert_eq!(set.scaling, Scaling::None);
    assert_eq!(set.image_shape, None);
    assert_eq!(f32_values(&set), &[0.5, 0.25, 1.0, 0.0, 1.0, 0.75]);
    // The header names the features (the label column left out), kept by splits.
    let names = Some(vec!["x".to_string(), "y".into(), "z".into()]);
    assert_eq!(set.columns, names);
    assert_eq!(set.split(0.5, 1).unwrap().0.columns, names);

    // Without a label column every column is a feature; a gzipped file reads the same.
    let path = dir.write("plain.csv.gz", &gzip(b"0.5,0.25,1,1\n0,1,0,0.75\n"));
    let set = load_csv(&path, &CsvOptions::default()).unwrap();
    assert_eq!((set.rows, set.width, set.labels.clone()), (2, 4, None));
    assert_eq!((set.image_shape, set.columns.clone()), (Some((2, 2)), None));
    assert_eq!(
        f32_values(&set),
        &[0.5, 0.25, 1.0, 1.0, 0.0, 1.0, 0.0, 0.75]
    );
}

#[test]
fn csv_integers_up_to_255_are_divided_by_255() {
    let dir = TempDir::new("csv-bytes");
    let path = dir.write("bytes.csv", b"0,128,255,17\n3,4,5,6\n");
    let set = load_csv(&path, &CsvOptions::default()).unwrap();
    assert_eq!(set.scaling, Scaling::Divide(255.0));
    assert_eq!(set.image_shape, Some((2, 2)));
    let values = f32_values(&set);
    assert_eq!(values[1], 128.0 / 255.0);
    assert_eq!(values[2], 1.0);
    assert_eq!(values[7], 6.0 / 255.0);
    assert_eq!(set.scaling.apply(&[51.0, 510.0]).unwrap(), vec![0.2, 1.0]);
}

#[test]
fn csv_other_values_are_scaled_per_column() {
    let dir = TempDir::new("csv-minmax");
    let path = dir.write("wide.csv", b"-1,  10, 5\n3, 20, 5\n1, 15.5, 5\n");
    let set = load_csv(&path, &CsvOptions::default()).unwrap();
    assert_eq!(
        set.scaling,
        Scaling::MinMax {
            min: vec![-1.0, 10.0, 5.0],
            max: vec![3.0, 20.0, 5.0]
        }
    );
    // Column 1 from [-1, 3], column 2 from [10, 20], column 3 constant → 0.
    assert_eq!(
        f32_values(&set),
        &[0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.5, 0.55, 0.0]
    );
    // The same mapping applies to new rows, clamped to [0, 1].
    assert_eq!(
        set.scaling.apply(&[0.0, 25.0, 9.0]).unwrap(),
        vec![0.25, 1.0, 0.0]
    );
    assert!(set.scaling.apply(&[0.0, 25.0]).is_err());
    assert!(set.scaling.apply(&[f64::NAN, 1.0, 1.0]).is_err());
    // invert undoes it: the loaded rows back in the file's units (the constant column too).
    let mut rows = f32_values(&set).to_vec();
    set.scaling.invert(&mut rows, 3).unwrap();
    assert_eq!(rows, &[-1.0, 10.0, 5.0, 3.0, 20.0, 5.0, 1.0, 15.5, 5.0]);
    assert!(set.scaling.invert(&mut rows, 2).is_err());
    let mut pixels = vec![0.2, 1.0];
    Scaling::Divide(255.0).invert(&mut pixels, 2).unwrap();
    assert_eq!(pixels, vec![51.0, 255.0]);
}

/// Rows given to a trained model map as the run's data did, whatever their own range; rows
/// already in [0, 1] stay as they are where the run's data was divided (images saved as
/// floats); a min-max run needs its columns.
#[test]
fn new_rows_take_the_runs_scaling() {
    let dir = TempDir::new("run-scaling");
    let options = CsvOptions::default();
    let min_max = Scaling::MinMax {
        min: vec![0.0, 10.0],
        max: vec![100.0, 20.0],
    };
    // Integers 0..16 would be bytes by their own rule; the digits' run divides by 16.
    let ints = dir.write("ints.csv", b"0,8\n16,4\n");
    let set = data::load_csv_scaled(&ints, &options, Some(&Scaling::Divide(16.0))).unwrap();
    assert_eq!(f32_values(&set), &[0.0, 0.5, 1.0, 0.25]);
    // A min-max run maps these rows by its own range, not theirs.
    let set = data::load_csv_scaled(&ints, &options, Some(&min_max)).unwrap();
    assert_eq!(f32_values(&set), &[0.0, 0.0, 0.16, 0.0]);
    assert_eq!(set.scaling, min_max);
    // Floats in [0, 1]: as they are for a dividing run, min-max mapped for a min-max run.
    let unit = dir.write("unit.csv", b"0.5,0.25\n1,0\n");
    let set = data::load_csv_scaled(&unit, &options, Some(&Scaling::Divide(255.0))).unwrap();
    assert_eq!(
        (f32_values(&set), &set.scaling),
        (&[0.5, 0.25, 1.0, 0.0][..], &Scaling::None)
    );
    let set = data::load_csv_scaled(&unit, &options, Some(&min_max)).unwrap();
    assert_eq!(f32_values(&set), &[0.005, 0.0, 0.01, 0.0]);
    // .npy the same way: bytes of a byte run stay bytes; floats in [0, 1] stay.
    let bytes = dir.write(
        "bytes.npy",
        &npy("|u1", false, "(2, 2)", &[0, 51, 255, 102]),
    );
    let set = data::load_npy_scaled(&bytes, Some(&Scaling::Divide(255.0))).unwrap();
    assert_eq!(set.pixels, Pixels::U8(vec![0, 51, 255, 102]));
    let floats: Vec<u8> = [0.5f32, 0.25, 1.0, 0.0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let floats = dir.write("floats.npy", &npy("<f4", false, "(2, 2)", &floats));
    let set = data::load_npy_scaled(&floats, Some(&Scaling::Divide(255.0))).unwrap();
    assert_eq!(f32_values(&set), &[0.5, 0.25, 1.0, 0.0]);
    let set = data::load_npy_scaled(&bytes, Some(&Scaling::Divide(16.0))).unwrap();
    assert_eq!(f32_values(&set), &[0.0, 1.0, 1.0, 1.0]);
    // A min-max run of two columns refuses rows of three, naming the file.
    let wide = dir.write("wide.csv", b"1,2,3\n");
    match data::load_csv_scaled(&wide, &options, Some(&min_max)) {
        Err(Error::Data { origin, message }) => {
            assert!(origin.ends_with("wide.csv"), "{origin}");
            assert!(message.contains("fitted on 2 columns"), "{message}");
        }
        other => panic!("expected a data error, got {:?}", other.map(|s| s.rows)),
    }
}

/// Labels from a file of their own (y beside X): .npy of shape (rows,) or (rows, 1) of any
/// integer-valued type, or a one-column CSV; joined to a data set of as many rows.
#[test]
fn labels_load_from_their_own_file() {
    let dir = TempDir::new("labels");
    let ints: Vec<u8> = [3i64, 0, 255]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let path = dir.write("y.npy", &npy("<i8", false, "(3,)", &ints));
    assert_eq!(data::load_labels(&path).unwrap(), vec![3, 0, 255]);
    let column = dir.write("y1.npy", &npy("|u1", false, "(3, 1)", &[1, 2, 3]));
    assert_eq!(data::load_labels(&column).unwrap(), vec![1, 2, 3]);
    let csv = dir.write("y.csv", b"class\n7\n8.0\n9\n");
    assert_eq!(data::load_labels(&csv).unwrap(), vec![7, 8, 9]);
    // Each refusal names the file and what was expected.
    let halves: Vec<u8> = [1.0f32, 1.5].iter().flat_map(|v| v.to_le_bytes()).collect();
    let bad = [
        (
            dir.write("half.npy", &npy("<f4", false, "(2,)", &halves)),
            "label 1.5 at row 1",
        ),
        (
            dir.write("wide.npy", &npy("|u1", false, "(2, 2)", &[1, 2, 3, 4])),
            "shape (2, 2)",
        ),
        (dir.write("big.csv", b"1\n256\n"), "label 256 in data row 2"),
        (dir.write("two.csv", b"1,2\n3,4\n"), "rows of 2 values"),
    ];
    for (path, expected) in bad {
        match data::load_labels(&path) {
            Err(Error::Data { origin, message }) => {
                assert_eq!(origin, path.display().to_string());
                assert!(message.contains(expected), "{message}");
            }
            other => panic!("{}: expected a data error, got {other:?}", path.display()),
        }
    }
    // Joined to a data set: one a row, and not over labels it has.
    let set = numbered(3);
    let unlabelled = Dataset {
        labels: None,
        ..set.clone()
    };
    let joined = unlabelled
        .clone()
        .with_labels(vec![4, 5, 6], "y.npy")
        .unwrap();
    assert_eq!(joined.labels, Some(vec![4, 5, 6]));
    let error = unlabelled.with_labels(vec![4, 5], "y.npy").unwrap_err();
    assert!(
        error.to_string().contains("2 labels for the 3 rows"),
        "{error}"
    );
    assert!(set.with_labels(vec![4, 5, 6], "y.npy").is_err());
}

/// The Error::Data of loading `text` as a CSV file with `options`.
fn csv_error(text: &str, options: CsvOptions) -> (String, String) {
    let dir = TempDir::new("csv-error");
    let path = dir.write("bad.csv", text.as_bytes());
    data_error(load_csv(&path, &options))
}

#[test]
fn csv_errors_name_the_line() {
    let none = CsvOptions::default();
    let (origin, message) = csv_error("a,b,c\n1,2,3\n4,5\n", none);
    assert_contains(&origin, &["bad.csv line 3"]);
    assert_contains(&message, &["row has 2 values, expected 3 like line 1"]);

    let (origin, message) = csv_error("1,2,3\n1,2,3,4\n", none);
    assert_contains(&origin, &["bad.csv line 2"]);
    assert_contains(&message, &["row has 4 values, expected 3 like line 1"]);

    let (origin, message) = csv_error("1,2,3\n4,five,6\n", none);
    assert_contains(&origin, &["bad.csv line 2"]);
    assert_contains(&message, &["column 2", "\"five\"", "expected a number"]);

    // A file separated by semicolons: the message says what separates columns.
    let (origin, message) = csv_error("a;b\n1;2\n", none);
    assert_contains(&origin, &["bad.csv line 2"]);
    assert_contains(&message, &["\"1;2\"", "separated by commas", "';'"]);

    let (origin, message) = csv_error("1,2,3\n4,,6\n", none);
    assert_contains(&origin, &["line 2"]);
    assert_contains(&message, &["column 2 is empty"]);

    let (origin, message) = csv_error("h1,h2\n1,2\n3,NaN\n", none);
    assert_contains(&origin, &["bad.csv line 3"]);
    assert_contains(&message, &["column 2 is NaN"]);

    // NaN in the first line is an error, not a header.
    let (origin, message) = csv_error("nan,2\n3,4\n", none);
    assert_contains(&origin, &["bad.csv line 1"]);
    assert_contains(&message, &["column 1 is NaN"]);

    let (origin, message) = csv_error("1,2\n3,4\n-inf,5\n", none);
    assert_contains(&origin, &["bad.csv line 3"]);
    assert_contains(&message, &["column 1 is infinite"]);

    let (origin, message) = csv_error("1,2\n3,1e300\n", none);
    assert_contains(&origin, &["bad.csv line 2"]);
    assert_contains(&message, &["column 2", "range of f32"]);

    let (origin, message) = csv_error("1,2\n\n3,4\n", none);
    assert_contains(&origin, &["bad.csv line 2"]);
    assert_contains(&message, &["blank line"]);
}

#[test]
fn csv_label_errors_name_the_line() {
    let label = CsvOptions {
        label_column: Some(0),
    };
    let (origin, message) = csv_error("1,0.5\n2.5,0.5\n", label);
    assert_contains(&origin, &["bad.csv line 2"]);
    assert_contains(&message, &["label \"2.5\"", "column 1", "0..=255"]);

    let (origin, message) = csv_error("1,0.5\n256,0.5\n", label);
    assert_contains(&origin, &["line 2"]);
    assert_contains(&message, &["label \"256\""]);

    let (origin, message) = csv_error("-1,0.5\n", label);
    assert_contains(&origin, &["line 1"]);
    assert_contains(&message, &["label \"-1\""]);

    let (origin, message) = csv_error(
        "1,0.5\n2,0.5\n",
        CsvOptions {
            label_column: Some(2),
        },
    );
    assert_contains(&origin, &["bad.csv line 1"]);
    assert_contains(&message, &["label column is column 3", "2 columns"]);

    let (_, message) = csv_error("1\n2\n", label);
    assert_contains(&message, &["only column is the label column"]);
}

#[test]
fn csv_empty_or_header_only_files_are_refused() {
    let none = CsvOptions::default();
    let (origin, message) = csv_error("", none);
    assert_contains(&origin, &["bad.csv"]);
    assert_contains(&message, &["empty file"]);

    let (_, message) = csv_error("\n \n", none);
    assert_contains(&message, &["empty file"]);

    let (_, message) = csv_error("a,b,c\n\n", none);
    assert_contains(&message, &["no data rows"]);

    let missing = std::env::temp_dir().join("latent-data-test-no-such-file.csv");
    match load_csv(&missing, &none) {
        Err(Error::Io { path, .. }) => assert_contains(&path, &["no-such-file.csv"]),
        other => panic!("expected Error::Io, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// .npy

#[test]
fn npy_u1_images_are_bytes() {
    let dir = TempDir::new("npy-u1");
    let data: Vec<u8> = (0..2 * 3 * 4).map(|i| (i * 11) as u8).collect();
    let path = dir.write("images.npy", &npy("|u1", false, "(2, 3, 4)", &data));
    let set = load_npy(&path).unwrap();
    assert_eq!(
        (set.rows, set.width, set.image_shape),
        (2, 12, Some((3, 4)))
    );
    assert_eq!(set.scaling, Scaling::Divide(255.0));
    assert_eq!(set.pixels, Pixels::U8(data.clone()));
    assert_eq!(set.labels, None);
    assert_eq!(set.value(1, 11), f32::from(data[23]) / 255.0);

    // Bytes that are all 0 or 1 are already in [0, 1].
    let binary = [0u8, 1, 1, 0, 1, 0];
    let path = dir.write("binary.npy", &npy("|u1", false, "(3, 2)", &binary));
    let set = load_npy(&path).unwrap();
    assert_eq!(set.scaling, Scaling::None);
    assert_eq!(f32_values(&set), &[0.0, 1.0, 1.0, 0.0, 1.0, 0.0]);
}

#[test]
fn npy_f4_f8_and_i4_are_scaled_like_csv() {
    let dir = TempDir::new("npy-floats");
    let values = [0.0f32, 0.125, 0.5, 1.0, 0.75, 0.25];
    let path = dir.write("f4.npy", &npy("<f4", false, "(2, 3)", &f32_bytes(&values)));
    let set = load_npy(&path).unwrap();
    assert_eq!((set.rows, set.width, set.image_shape), (2, 3, None));
    assert_eq!(set.scaling, Scaling::None);
    assert_eq!(f32_values(&set), &values);

    let path = dir.write(
        "f8.npy",
        &npy("<f8", false, "(3, 1)", &f64_bytes(&[-2.0, 0.0, 6.0])),
    );
    let set = load_npy(&path).unwrap();
    assert_eq!(
        set.scaling,
        Scaling::MinMax {
            min: vec![-2.0],
            max: vec![6.0]
        }
    );
    assert_eq!(f32_values(&set), &[0.0, 0.25, 1.0]);

    // Integers in 0..=255 become bytes, in any dtype; version 2.0 headers read the same.
    let ints: Vec<u8> = [0i32, 255, 51, 3]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let path = dir.write("i4.npy", &npy_version(2, "<i4", false, "(1, 4)", &ints));
    let set = load_npy(&path).unwrap();
    assert_eq!(set.scaling, Scaling::Divide(255.0));
    assert_eq!(set.pixels, Pixels::U8(vec![0, 255, 51, 3]));
    assert_eq!(set.image_shape, None);
}

#[test]
fn npy_errors_are_explained() {
    let dir = TempDir::new("npy-errors");
    let data = f32_bytes(&[0.5; 6]);
    let good = npy("<f4", false, "(2, 3)", &data);

    let mut bad_magic = good.clone();
    bad_magic[1] = b'X';
    let path = dir.write("magic.npy", &bad_magic);
    let (origin, message) = data_error(load_npy(&path));
    assert_contains(&origin, &["magic.npy"]);
    assert_contains(&message, &["NUMPY"]);

    let path = dir.write("fortran.npy", &npy("<f4", true, "(2, 3)", &data));
    let (origin, message) = data_error(load_npy(&path));
    assert_contains(&origin, &["fortran.npy"]);
    assert_contains(&message, &["fortran_order is True"]);

    let path = dir.write("short.npy", &good[..good.len() - 4]);
    let (origin, message) = data_error(load_npy(&path));
    assert_contains(&origin, &["short.npy"]);
    assert_contains(&message, &["20 bytes", "(2, 3)", "needs 24"]);

    let mut long = good.clone();
    long.push(0);
    let path = dir.write("long.npy", &long);
    let (_, message) = data_error(load_npy(&path));
    assert_contains(&message, &["25 bytes", "needs 24"]);

    let path = dir.write("big-endian.npy", &npy(">f4", false, "(2, 3)", &data));
    let (_, message) = data_error(load_npy(&path));
    assert_contains(
        &message,
        &["unsupported dtype \">f4\"", "'<f4'", "'|u1'", "'<i8'"],
    );

    let path = dir.write("rank1.npy", &npy("<f4", false, "(6,)", &data));
    let (_, message) = data_error(load_npy(&path));
    assert_contains(&message, &["shape (6,) has 1 dimensions"]);

    let path = dir.write("empty.npy", &npy("<f4", false, "(0, 3)", &[]));
    let (_, message) = data_error(load_npy(&path));
    assert_contains(&message, &["holds no values"]);

    let path = dir.write(
        "nan.npy",
        &npy(
            "<f8",
            false,
            "(2, 2)",
            &f64_bytes(&[0.0, 1.0, f64::NAN, 0.5]),
        ),
    );
    let (origin, message) = data_error(load_npy(&path));
    assert_contains(&origin, &["nan.npy"]);
    assert_contains(&message, &["NaN", "flat index 2", "row 1"]);

    let path = dir.write(
        "inf.npy",
        &npy("<f4", false, "(1, 2)", &f32_bytes(&[0.0, f32::INFINITY])),
    );
    let (_, message) = data_error(load_npy(&path));
    assert_contains(&message, &["inf", "flat index 1"]);

    let path = dir.write(
        "huge.npy",
        &npy("<f8", false, "(1, 2)", &f64_bytes(&[0.0, -1e300])),
    );
    let (_, message) = data_error(load_npy(&path));
    assert_contains(&message, &["flat index 1", "range of f32"]);

    let mut truncated_header = good.clone();
    truncated_header.truncate(40);
    let path = dir.write("header.npy", &truncated_header);
    let (_, message) = data_error(load_npy(&path));
    assert_contains(&message, &["truncated"]);
}

// ---------------------------------------------------------------------------------------
// Splits, subsets, epoch orders, batches

#[test]
fn split_is_disjoint_complete_and_deterministic() {
    let set = numbered(200);
    let (train, test) = set.split(0.25, 42).unwrap();
    assert_eq!((train.rows, test.rows), (150, 50));
    assert_eq!(
        (train.name.as_str(), test.name.as_str()),
        ("numbered-train", "numbered-test")
    );
    let train_labels = train.labels.clone().unwrap();
    let test_labels = test.labels.clone().unwrap();
    let mut all: Vec<u8> = train_labels.iter().chain(&test_labels).copied().collect();
    all.sort_unstable();
    assert_eq!(all, (0..200).map(|r| r as u8).collect::<Vec<_>>());
    // Rows keep their values and their original order.
    assert!(train_labels.windows(2).all(|w| w[0] < w[1]));
    for (r, &label) in test_labels.iter().enumerate() {
        assert_eq!(test.row_f32(r), set.row_f32(label as usize));
    }
    // Shuffled: the test part is not simply the first or last rows.
    assert_ne!(test_labels, (0..50).collect::<Vec<u8>>());
    assert_ne!(test_labels, (150..200).collect::<Vec<u8>>());

    let (train_again, test_again) = set.split(0.25, 42).unwrap();
    assert!(train_again == train && test_again == test);
    let (_, other_test) = set.split(0.25, 43).unwrap();
    assert_ne!(other_test.labels, test.labels);

    let digits = load_digits().unwrap();
    let (train, test) = digits.split(0.2, 1).unwrap();
    assert_eq!((train.rows, test.rows), (1438, 359));
    assert_eq!(train.image_shape, Some((8, 8)));
}

#[test]
fn split_refuses_bad_fractions() {
    let set = numbered(10);
    for fraction in [0.0, 1.0, -0.5, 1.5, f64::NAN, 0.01, 0.99] {
        match set.split(fraction, 1) {
            Err(Error::InvalidArgument(message)) => assert!(message.contains("fraction")),
            other => panic!("fraction {fraction}: expected InvalidArgument, got {other:?}"),
        }
    }
    let (train, test) = set.split(0.1, 1).unwrap();
    assert_eq!((train.rows, test.rows), (9, 1));
}

#[test]
fn subset_picks_rows_in_order() {
    let set = numbered(20);
    let subset = set.subset(&[5, 0, 5, 19]);
    assert_eq!(subset.rows, 4);
    assert_eq!(subset.labels, Some(vec![5, 0, 5, 19]));
    assert_eq!(subset.row_f32(3), vec![19.0 / 20.0, 1.0 - 19.0 / 20.0]);
    assert_eq!(subset.row_f32(0), subset.row_f32(2));
}

#[test]
fn epoch_order_is_a_permutation_per_epoch() {
    let rows = 1000;
    let first = epoch_order(rows, 7, 0);
    let mut sorted = first.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..rows as u32).collect::<Vec<_>>());
    assert_ne!(first, sorted, "epoch 0 is not shuffled");
    assert_eq!(epoch_order(rows, 7, 0), first);

    let epochs: Vec<Vec<u32>> = (0..5).map(|epoch| epoch_order(rows, 7, epoch)).collect();
    for a in 0..epochs.len() {
        for b in a + 1..epochs.len() {
            assert_ne!(epochs[a], epochs[b], "epochs {a} and {b} visit rows alike");
        }
    }
    assert_ne!(epoch_order(rows, 8, 0), first);
    assert!(epoch_order(0, 7, 0).is_empty());
}

#[test]
fn check_batch_names_both_numbers() {
    let set = numbered(30);
    assert!(set.check_batch(1).is_ok());
    assert!(set.check_batch(30).is_ok());
    for batch in [0, 31] {
        match set.check_batch(batch) {
            Err(Error::InvalidArgument(message)) => {
                assert_contains(&message, &[&format!("batch size {batch}"), "30 rows"])
            }
            other => panic!("batch {batch}: expected InvalidArgument, got {other:?}"),
        }
    }
}

#[test]
fn dataset_new_checks_consistency() {
    let pixels = || Pixels::U8(vec![0, 51, 255, 102, 0, 0]);
    let set = Dataset::new("six", 3, pixels(), None, None, Scaling::Divide(255.0)).unwrap();
    assert_eq!(set.rows, 2);
    assert_eq!(set.to_f32(), vec![0.0, 0.2, 1.0, 0.4, 0.0, 0.0]);
    assert_eq!(set.row_f32(1), vec![0.4, 0.0, 0.0]);

    let (origin, message) = data_error(Dataset::new("six", 4, pixels(), None, None, Scaling::None));
    assert_eq!(origin, "six");
    assert_contains(&message, &["whole rows of 4"]);
    let (_, message) = data_error(Dataset::new(
        "six",
        3,
        pixels(),
        Some(vec![1]),
        None,
        Scaling::None,
    ));
    assert_contains(&message, &["1 labels for 2 rows"]);
    let (_, message) = data_error(Dataset::new(
        "six",
        3,
        pixels(),
        None,
        Some((2, 2)),
        Scaling::None,
    ));
    assert_contains(&message, &["image shape"]);
    let (_, message) = data_error(Dataset::new(
        "none",
        3,
        Pixels::F32(vec![]),
        None,
        None,
        Scaling::None,
    ));
    assert_contains(&message, &["no rows"]);
}
