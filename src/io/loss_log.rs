//! The loss log: one CSV row per epoch (train and test loss, each loss term, time,
//! throughput), rewritten atomically after every epoch.

use std::path::Path;

use crate::error::Result;
use crate::io::write_atomic;
use crate::train::EpochReport;

/// The CSV header for epochs with these loss terms.
fn header(report: &EpochReport) -> String {
    let mut columns = vec!["epoch".to_string(), "train_loss".into(), "test_loss".into()];
    columns.extend(
        report
            .train_terms
            .iter()
            .map(|(name, _)| format!("train_{name}")),
    );
    columns.extend(
        report
            .test_terms
            .iter()
            .map(|(name, _)| format!("test_{name}")),
    );
    columns.extend(["seconds".to_string(), "samples_per_second".into()]);
    columns.join(",")
}

/// One epoch as a CSV row.
fn row(r: &EpochReport) -> String {
    let mut cells = vec![
        r.epoch.to_string(),
        r.train_loss.to_string(),
        r.test_loss.map_or(String::new(), |t| t.to_string()),
    ];
    cells.extend(
        r.train_terms
            .iter()
            .chain(&r.test_terms)
            .map(|(_, v)| v.to_string()),
    );
    cells.extend([
        format!("{:.3}", r.seconds),
        format!("{:.1}", r.samples_per_second),
    ]);
    cells.join(",")
}

/// Adds an epoch's row to the log at `path` (creating it with a header), rewriting the file
/// atomically. Rows of a resumed run follow the rows already there.
pub fn append_epoch(path: &Path, report: &EpochReport) -> Result<()> {
    let mut text = match std::fs::read_to_string(path) {
        Ok(existing) if !existing.is_empty() => existing,
        _ => header(report) + "\n",
    };
    text.push_str(&(row(report) + "\n"));
    write_atomic(path, text.as_bytes())
}

/// The train and test loss columns of a loss log (a test cell left empty reads as NaN).
pub fn read_losses(path: &Path) -> Result<(Vec<f64>, Vec<f64>)> {
    let text = std::fs::read_to_string(path).map_err(|e| crate::error::Error::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    let cell = |row: &[&str], i: usize| {
        row.get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    let rows: Vec<Vec<&str>> = text
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    Ok((
        rows.iter().map(|r| cell(r, 1)).collect(),
        rows.iter().map(|r| cell(r, 2)).collect(),
    ))
}
