//! Checkpoints: a directory holding `model.safetensors` (every parameter by name, shaped as
//! PyTorch shapes nn.Linear — weight (out, in), bias (out) — and, for resuming, Adam's moments
//! as `adam.m.<name>` and `adam.v.<name>`) and `config.json` (the model and the run). Each file is
//! written atomically. The step and epoch live in the safetensors metadata, the single source
//! of truth for resuming; config.json repeats them for people.

use std::collections::BTreeMap;
use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde::{Deserialize, Serialize};

use crate::data::Scaling;

use crate::error::{host_vec, Error, Result};
use crate::graph::plan::{Location, Plan};
use crate::io::write_atomic;
use crate::kernels::adam::AdamConfig;
use crate::model::ModelConfig;

pub const WEIGHTS_FILE: &str = "model.safetensors";
pub const CONFIG_FILE: &str = "config.json";
const FORMAT: &str = "latent-1";

/// What config.json records: the model and how it was trained.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub model: ModelConfig,
    pub batch: usize,
    pub epochs: usize,
    pub adam: AdamConfig,
    /// Seeds shuffling and noise.
    pub seed: u64,
    /// Seeds the initial parameters.
    pub init_seed: u64,
    /// Where the data came from, for people.
    pub data: String,
    /// Epochs completed when the checkpoint was written.
    pub epoch: usize,
    /// The number of the next training step.
    pub next_step: u32,
    /// The device and matmul kernels of the run that wrote the checkpoint, for people
    /// (`train::Device::describe`: e.g. whether the matmuls ran on coop-f16); empty in
    /// checkpoints from before it was recorded.
    #[serde(default)]
    pub trained_on: String,
    /// How to load the run's data again, with `seed` the same split into training and test
    /// rows. None in checkpoints from before it was recorded, and for programs that train on
    /// data of their own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_source: Option<DataSource>,
    /// How the run's data was mapped to [0, 1]; rows of a CSV or .npy file given to the
    /// model later are mapped the same way, whatever their own range. None in checkpoints
    /// from before it was recorded (the run's data is then loaded again for it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scaling: Option<Scaling>,
    /// The names of the data's features (a CSV header's), for the header of the rows the
    /// model writes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub columns: Option<Vec<String>>,
}

/// A data set as `latent train` names it: "mnist", "digits", or a CSV or .npy file's path
/// (absolute), with the CSV column holding labels, and the share of rows held out for
/// testing (for sets without a test set of their own).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DataSource {
    pub data: String,
    pub label_column: Option<usize>,
    /// A file of labels for the rows (absolute path), where they come apart from the data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<String>,
    pub test_fraction: f64,
}

/// The trained state: the flat parameters and, for resuming, Adam's moments.
#[derive(Clone, Debug)]
pub struct TrainingState {
    pub params: Vec<f32>,
    pub adam: Option<(Vec<f32>, Vec<f32>)>,
    pub epoch: usize,
    pub next_step: u32,
}

fn io_error(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

fn data_error(path: &Path, message: impl Into<String>) -> Error {
    Error::Data {
        origin: path.display().to_string(),
        message: message.into(),
    }
}

/// (name, PyTorch shape, offset, length) of every parameter of the plan; a stacked
/// parameter (the VAE's μ and logvar layers in one) as each of its parts.
fn parameter_layout(plan: &Plan) -> Vec<(String, Vec<usize>, usize, usize)> {
    let mut layout = Vec::new();
    for t in plan.graph.parameters() {
        let tensor = plan.graph.tensor(t);
        let Location::Params(mut offset) = plan.location[t.0] else {
            continue;
        };
        if tensor.parts.is_empty() {
            let shape = if tensor.rows == 1 {
                vec![tensor.cols]
            } else {
                vec![tensor.rows, tensor.cols]
            };
            layout.push((tensor.name.clone(), shape, offset, tensor.len()));
        }
        for part in &tensor.parts {
            layout.push((part.name.clone(), part.shape.clone(), offset, part.len()));
            offset += part.len();
        }
    }
    layout
}

/// Writes the checkpoint into `dir` (created if needed).
pub fn save(dir: &Path, plan: &Plan, record: &RunRecord, state: &TrainingState) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(io_error(dir))?;
    let layout = parameter_layout(plan);
    let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for (name, shape, offset, len) in &layout {
        tensors.push((
            name.clone(),
            shape.clone(),
            bytemuck::cast_slice(&state.params[*offset..offset + len]).to_vec(),
        ));
        if let Some((m, v)) = &state.adam {
            tensors.push((
                format!("adam.m.{name}"),
                shape.clone(),
                bytemuck::cast_slice(&m[*offset..offset + len]).to_vec(),
            ));
            tensors.push((
                format!("adam.v.{name}"),
                shape.clone(),
                bytemuck::cast_slice(&v[*offset..offset + len]).to_vec(),
            ));
        }
    }
    let views = tensors
        .iter()
        .map(|(name, shape, bytes)| {
            Ok((
                name.clone(),
                TensorView::new(Dtype::F32, shape.clone(), bytes)
                    .map_err(|e| Error::InvalidArgument(e.to_string()))?,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    let metadata = BTreeMap::from([
        ("format".to_string(), FORMAT.to_string()),
        ("epoch".to_string(), state.epoch.to_string()),
        ("next_step".to_string(), state.next_step.to_string()),
    ]);
    let bytes = serialize_sorted(views, &metadata)?;
    let json = serde_json::to_vec_pretty(&RunRecord {
        epoch: state.epoch,
        next_step: state.next_step,
        ..record.clone()
    })
    .map_err(|e| Error::InvalidArgument(e.to_string()))?;
    write_atomic(&dir.join(WEIGHTS_FILE), &bytes)?;
    write_atomic(&dir.join(CONFIG_FILE), &json)
}

/// The safetensors file of `views` with `metadata`, the same bytes for the same tensors
/// and metadata: safetensors orders the tensors (by dtype, then name) but writes metadata
/// from a HashMap in an order that changes from run to run, so the metadata goes in here,
/// sorted, as the header's first entry (where safetensors puts it).
fn serialize_sorted(
    views: Vec<(String, TensorView<'_>)>,
    metadata: &BTreeMap<String, String>,
) -> Result<Vec<u8>> {
    let error = |e: &dyn std::fmt::Display| Error::InvalidArgument(e.to_string());
    let plain = safetensors::serialize(views, None).map_err(|e| error(&e))?;
    let header_len = u64::from_le_bytes(plain[..8].try_into().map_err(|e| error(&e))?) as usize;
    let header = std::str::from_utf8(&plain[8..8 + header_len]).map_err(|e| error(&e))?;
    let entries = header
        .trim_end()
        .strip_prefix('{')
        .ok_or_else(|| error(&"a safetensors header that is not a JSON object"))?;
    let separator = if entries == "}" { "" } else { "," };
    let metadata = serde_json::to_string(metadata).map_err(|e| error(&e))?;
    let mut header = format!("{{\"__metadata__\":{metadata}{separator}{entries}").into_bytes();
    // The data starts 8-byte aligned, as safetensors pads its header.
    header.resize(header.len().next_multiple_of(8), b' ');
    let mut bytes = Vec::with_capacity(8 + header.len() + plain.len() - 8 - header_len);
    bytes.extend((header.len() as u64).to_le_bytes());
    bytes.extend(header);
    bytes.extend(&plain[8 + header_len..]);
    Ok(bytes)
}

/// Reads config.json of a checkpoint directory.
pub fn load_record(dir: &Path) -> Result<RunRecord> {
    let path = dir.join(CONFIG_FILE);
    let text = std::fs::read(&path).map_err(io_error(&path))?;
    let record: RunRecord = serde_json::from_slice(&text)
        .map_err(|e| data_error(&path, format!("not a latent run config: {e}")))?;
    record.model.check()?;
    Ok(record)
}

/// Reads the weights (and Adam's moments when present) of a checkpoint for `plan`; every
/// parameter of the plan must be there with its shape.
pub fn load_state(dir: &Path, plan: &Plan) -> Result<TrainingState> {
    let path = dir.join(WEIGHTS_FILE);
    let bytes = std::fs::read(&path).map_err(io_error(&path))?;
    let file = SafeTensors::deserialize(&bytes)
        .map_err(|e| data_error(&path, format!("not a safetensors file: {e}")))?;
    let (_, metadata) =
        SafeTensors::read_metadata(&bytes).map_err(|e| data_error(&path, e.to_string()))?;
    let meta = metadata.metadata().clone().unwrap_or_default();
    if meta.get("format").map(String::as_str) != Some(FORMAT) {
        return Err(data_error(
            &path,
            format!(
                "metadata format is {:?}, expected {FORMAT:?}",
                meta.get("format")
            ),
        ));
    }
    let number = |key: &str| -> Result<u64> {
        meta.get(key)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| data_error(&path, format!("metadata lacks a numeric {key}")))
    };
    let (epoch, next_step) = (number("epoch")? as usize, number("next_step")? as u32);

    let read = |name: &str, shape: &[usize], out: &mut [f32]| -> Result<bool> {
        let Ok(view) = file.tensor(name) else {
            return Ok(false);
        };
        if view.dtype() != Dtype::F32 || view.shape() != shape {
            return Err(data_error(
                &path,
                format!(
                    "{name} is {:?} {:?}, the model needs F32 {shape:?}",
                    view.dtype(),
                    view.shape()
                ),
            ));
        }
        out.copy_from_slice(&bytemuck::pod_collect_to_vec::<u8, f32>(view.data()));
        Ok(true)
    };
    let what = format!(
        "{}: the model's {} parameters",
        path.display(),
        plan.param_len
    );
    let mut params = host_vec(0.0, plan.param_len, &what)?;
    let mut m = host_vec(0.0, plan.param_len, &what)?;
    let mut v = host_vec(0.0, plan.param_len, &what)?;
    let mut has_adam = true;
    for (name, shape, offset, len) in parameter_layout(plan) {
        if !read(&name, &shape, &mut params[offset..offset + len])? {
            return Err(data_error(
                &path,
                format!("no tensor {name}: the checkpoint does not fit this model"),
            ));
        }
        has_adam &= read(
            &format!("adam.m.{name}"),
            &shape,
            &mut m[offset..offset + len],
        )?;
        has_adam &= read(
            &format!("adam.v.{name}"),
            &shape,
            &mut v[offset..offset + len],
        )?;
    }
    Ok(TrainingState {
        params,
        adam: has_adam.then_some((m, v)),
        epoch,
        next_step,
    })
}
