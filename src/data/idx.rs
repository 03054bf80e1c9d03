//! MNIST in its IDX files: train-images-idx3-ubyte, train-labels-idx1-ubyte,
//! t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte, each raw or gzipped (`.gz`). An IDX
//! file is a big-endian u32 magic number (0x00000803 for images: bytes, 3 dimensions;
//! 0x00000801 for labels: bytes, 1 dimension), one big-endian u32 per dimension, then the
//! bytes. Everything in the header is checked, and the file length must match it exactly.

use std::path::{Path, PathBuf};

use super::file::{data_error, read_bytes};
use super::{Dataset, Pixels, Scaling};
use crate::error::{Error, Result};

/// The environment variable naming the MNIST directory when no directory is given.
pub const DATA_DIR_ENV: &str = "LATENT_DATA_DIR";

const TRAIN_IMAGES: &str = "train-images-idx3-ubyte";
const TRAIN_LABELS: &str = "train-labels-idx1-ubyte";
const TEST_IMAGES: &str = "t10k-images-idx3-ubyte";
const TEST_LABELS: &str = "t10k-labels-idx1-ubyte";
const ALL_FILES: [&str; 4] = [TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS];

const IMAGES_MAGIC: u32 = 0x0000_0803;
const LABELS_MAGIC: u32 = 0x0000_0801;
const LARGEST_LABEL: u8 = 9;

/// Loads MNIST from `dir`: (train, test), 60,000 and 10,000 images of 28×28 bytes with their
/// labels 0-9, named "mnist-train" and "mnist-test", scaled by dividing by 255.
pub fn load_mnist(dir: &Path) -> Result<(Dataset, Dataset)> {
    let train = load_images_and_labels(dir, "mnist-train", TRAIN_IMAGES, TRAIN_LABELS)?;
    let test = load_images_and_labels(dir, "mnist-test", TEST_IMAGES, TEST_LABELS)?;
    Ok((train, test))
}

/// The MNIST directory: `explicit` (--data-dir) if given, else $LATENT_DATA_DIR if set, else
/// ../shared/data/mnist or data/mnist (relative to the current directory) if it holds the
/// four files. None when none of these applies. An explicit or $LATENT_DATA_DIR directory is
/// returned as it is: if it lacks the files, [`load_mnist`] says which.
pub fn mnist_dir(explicit: Option<&Path>) -> Option<PathBuf> {
    if let Some(dir) = explicit {
        return Some(dir.to_path_buf());
    }
    if let Some(dir) = std::env::var_os(DATA_DIR_ENV).filter(|dir| !dir.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    [Path::new("../shared/data/mnist"), Path::new("data/mnist")]
        .into_iter()
        .find(|dir| has_mnist_files(dir))
        .map(Path::to_path_buf)
}

/// True when `dir` holds all four MNIST files, raw or gzipped.
fn has_mnist_files(dir: &Path) -> bool {
    ALL_FILES.iter().all(|base| locate(dir, base).is_ok())
}

/// `dir/base` or `dir/base.gz`, whichever exists (the raw file first); an error naming the
/// file and both names tried when neither does.
fn locate(dir: &Path, base: &str) -> Result<PathBuf> {
    let raw = dir.join(base);
    let gzipped = dir.join(format!("{base}.gz"));
    if raw.is_file() {
        return Ok(raw);
    }
    if gzipped.is_file() {
        return Ok(gzipped);
    }
    Err(Error::Io {
        path: raw.display().to_string(),
        message: format!(
            "MNIST file {base} not found; tried {} and {}",
            raw.display(),
            gzipped.display()
        ),
    })
}

/// One half of MNIST: an images file and its labels file.
fn load_images_and_labels(
    dir: &Path,
    name: &str,
    images_file: &str,
    labels_file: &str,
) -> Result<Dataset> {
    let images_path = locate(dir, images_file)?;
    let labels_path = locate(dir, labels_file)?;
    let images_origin = images_path.display().to_string();
    let labels_origin = labels_path.display().to_string();
    let image_bytes = read_bytes(&images_path)?;
    let label_bytes = read_bytes(&labels_path)?;
    let (dims, pixels) = parse_idx(&image_bytes, &images_origin, IMAGES_MAGIC)?;
    let [count, height, width] = dims[..] else {
        return Err(data_error(images_origin, "expected 3 dimensions"));
    };
    if count == 0 || height == 0 || width == 0 {
        return Err(data_error(
            images_origin,
            format!("header gives {count} images of {height}×{width}; expected at least one image of at least 1×1"),
        ));
    }
    let (label_dims, labels) = parse_idx(&label_bytes, &labels_origin, LABELS_MAGIC)?;
    if label_dims != [count] {
        return Err(data_error(
            labels_origin,
            format!(
                "{} labels for the {count} images of {images_origin}; expected one label per image",
                label_dims.first().copied().unwrap_or(0)
            ),
        ));
    }
    check_labels(labels, &labels_origin)?;
    Dataset::new(
        name,
        height * width,
        Pixels::U8(pixels.to_vec()),
        Some(labels.to_vec()),
        Some((height, width)),
        Scaling::Divide(255.0),
    )
}

/// Every label at most 9; the first that is not is named by its record number (from 0).
fn check_labels(labels: &[u8], origin: &str) -> Result<()> {
    match labels.iter().position(|&label| label > LARGEST_LABEL) {
        None => Ok(()),
        Some(record) => Err(data_error(
            format!("{origin} record {record}"),
            format!(
                "label {}, expected 0..={LARGEST_LABEL}",
                labels.get(record).copied().unwrap_or(0)
            ),
        )),
    }
}

/// Checks an IDX file's magic number and length; returns its dimensions and its data.
fn parse_idx<'a>(bytes: &'a [u8], origin: &str, magic: u32) -> Result<(Vec<usize>, &'a [u8])> {
    let Some(found) = be_u32(bytes, 0) else {
        return Err(data_error(
            origin,
            format!(
                "file holds {} bytes, too short for an IDX header",
                bytes.len()
            ),
        ));
    };
    if found != magic {
        let hint = if bytes.starts_with(&[0x1f, 0x8b]) {
            " (the file is gzip-compressed: name it with .gz)"
        } else {
            ""
        };
        return Err(data_error(
            origin,
            format!("magic number 0x{found:08x}, expected 0x{magic:08x}{hint}"),
        ));
    }
    let rank = (magic & 0xff) as usize;
    let header = 4 + 4 * rank;
    let mut dims = Vec::with_capacity(rank);
    for dim in 0..rank {
        let Some(size) = be_u32(bytes, 4 + 4 * dim) else {
            return Err(data_error(
                origin,
                format!(
                    "file holds {} bytes, too short for the {header}-byte header of {rank} dimensions",
                    bytes.len()
                ),
            ));
        };
        dims.push(size as usize);
    }
    let data_len = dims
        .iter()
        .try_fold(1usize, |len, &dim| len.checked_mul(dim));
    let expected = data_len.and_then(|len| len.checked_add(header));
    let shape = dims
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join("×");
    match (expected, bytes.get(header..)) {
        (Some(expected), Some(data)) if bytes.len() == expected => Ok((dims, data)),
        (Some(expected), _) => Err(data_error(
            origin,
            format!(
                "file holds {} bytes, expected {expected} (a {header}-byte header and {shape} bytes of data){}",
                bytes.len(),
                if bytes.len() < expected { "; the file is truncated" } else { "" }
            ),
        )),
        (None, _) => Err(data_error(
            origin,
            format!("header gives dimensions {shape}, too large to hold in memory"),
        )),
    }
}

/// The big-endian u32 at byte `at`, if the file is long enough.
fn be_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let word: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_be_bytes(word))
}
