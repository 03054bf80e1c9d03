//! Comma-separated values: one sample per line, numbers separated by commas (whitespace
//! around them is allowed), an optional header line (a first line whose fields are not all
//! numbers), blank lines allowed at the end, gzipped when the name ends in `.gz`. An
//! optional column holds integer labels. Values are scaled to [0, 1] by the rule in
//! `scaling.rs` and stored as f32.

use std::path::Path;

use super::file::{data_error, read_bytes};
use super::scaling::{fits_f32, scaling_for_new_rows, Scaling, ScalingChooser};
use super::{Dataset, Pixels};
use crate::error::Result;

/// How to read a CSV file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CsvOptions {
    /// The column, counting from 0, that holds integer labels in 0..=255; it is not a
    /// feature. Messages count columns from 1, as editors do.
    pub label_column: Option<usize>,
}

/// Loads a CSV file of numbers, one sample per line. The features are scaled to [0, 1]:
/// left as they are when all are already in [0, 1], divided by 255 when all are integers in
/// 0..=255, else mapped per column from its minimum to its maximum (see
/// [`Dataset::scaling`]). Rows whose width is a perfect square (at least 4) are taken to be
/// square images.
pub fn load_csv(path: &Path, options: &CsvOptions) -> Result<Dataset> {
    load_csv_scaled(path, options, None)
}

/// [`load_csv`], the features mapped to [0, 1] by `scaling` where given (a run's, so that new
/// rows map as its data did; rows already in [0, 1] stay so where it divides) instead of
/// the rule.
pub fn load_csv_scaled(
    path: &Path,
    options: &CsvOptions,
    scaling: Option<&Scaling>,
) -> Result<Dataset> {
    let origin = path.display().to_string();
    let bytes = read_bytes(path)?;
    let table = parse_csv(&bytes, &origin, options)?;
    let mut chooser = ScalingChooser::new(table.width);
    for row in table.values.chunks_exact(table.width) {
        chooser.push_row(row);
    }
    let scaling = match scaling {
        Some(run) => scaling_for_new_rows(run, chooser.choose(), table.width, &origin)?,
        None => chooser.choose(),
    };
    let mut pixels = Vec::with_capacity(table.values.len());
    for row in table.values.chunks_exact(table.width) {
        pixels.extend(scaling.apply(row)?);
    }
    let name = path
        .file_name()
        .map_or(origin.clone(), |name| name.to_string_lossy().into_owned());
    Ok(Dataset {
        columns: table.columns,
        ..Dataset::new(
            name,
            table.width,
            Pixels::F32(pixels),
            table.labels,
            square_shape(table.width),
            scaling,
        )?
    })
}

/// One integer label in 0..=255 per row, from a CSV file of one column (a header line is
/// allowed): labels kept apart from their data set.
pub fn load_csv_labels(path: &Path) -> Result<Vec<u8>> {
    let origin = path.display().to_string();
    let table = parse_csv(&read_bytes(path)?, &origin, &CsvOptions::default())?;
    if table.width != 1 {
        return Err(data_error(
            &origin,
            format!("rows of {} values; expected one label a row", table.width),
        ));
    }
    table
        .values
        .iter()
        .enumerate()
        .map(|(row, &value)| {
            super::label_value(value).ok_or_else(|| {
                data_error(
                    &origin,
                    format!(
                        "label {value} in data row {} is not an integer in 0..=255",
                        row + 1
                    ),
                )
            })
        })
        .collect()
}

/// The numbers of a CSV file as they are, unscaled (latent codes, say): (values row-major,
/// width). Same checks as [`load_csv`]; no label column.
pub fn load_csv_raw(path: &Path) -> Result<(Vec<f32>, usize)> {
    let origin = path.display().to_string();
    let table = parse_csv(&read_bytes(path)?, &origin, &CsvOptions::default())?;
    Ok((
        table.values.iter().map(|&v| v as f32).collect(),
        table.width,
    ))
}

/// (s, s) when `width` is s × s with s ≥ 2.
fn square_shape(width: usize) -> Option<(usize, usize)> {
    let side = (width as f64).sqrt().round() as usize;
    (side >= 2 && side.checked_mul(side) == Some(width)).then_some((side, side))
}

/// The numbers of a CSV file, before scaling.
pub(crate) struct CsvTable {
    /// Features per row (the label column excluded).
    pub width: usize,
    /// The features, row-major (rows, width), all finite.
    pub values: Vec<f64>,
    /// One label per row when a label column was asked for.
    pub labels: Option<Vec<u8>>,
    /// The header's names of the features (the label column left out), when there is one.
    pub columns: Option<Vec<String>>,
}

/// Parses CSV text; `origin` names the file in errors.
pub(crate) fn parse_csv(bytes: &[u8], origin: &str, options: &CsvOptions) -> Result<CsvTable> {
    let text = utf8_text(bytes, origin)?;
    let lines = data_lines(text, origin)?;
    let (header, body) = match lines.split_first() {
        Some((&(line_number, line), rest)) if is_header(&fields(line)) => {
            (Some((line_number, fields(line).len())), rest)
        }
        _ => (None, lines.as_slice()),
    };
    let Some(&(first_line, first)) = body.first() else {
        return Err(data_error(
            origin,
            "no data rows; expected lines of comma-separated numbers after the header",
        ));
    };
    // The header, or else the first data row, fixes the number of columns.
    let (reference_line, count) = header.unwrap_or((first_line, fields(first).len()));
    let width = feature_width(count, options, &format!("{origin} line {reference_line}"))?;
    // No reservation from the first line's width: a ragged file must not ask for more
    // memory than its rows hold.
    let mut values = Vec::new();
    let mut labels = options.label_column.map(|_| Vec::with_capacity(body.len()));
    for &(line_number, line) in body {
        let at = format!("{origin} line {line_number}");
        let fields = fields(line);
        if fields.len() != count {
            return Err(data_error(
                at,
                format!(
                    "row has {} values, expected {count} like line {reference_line}",
                    fields.len()
                ),
            ));
        }
        for (column, field) in fields.iter().enumerate() {
            match labels.as_mut() {
                Some(labels) if Some(column) == options.label_column => {
                    labels.push(parse_label(field, column, &at)?)
                }
                _ => values.push(parse_number(field, column, &at)?),
            }
        }
    }
    let columns = lines
        .first()
        .filter(|_| header.is_some())
        .map(|&(_, line)| {
            fields(line)
                .into_iter()
                .enumerate()
                .filter(|&(column, _)| Some(column) != options.label_column)
                .map(|(_, name)| name.to_string())
                .collect()
        });
    Ok(CsvTable {
        width,
        values,
        labels,
        columns,
    })
}

/// The fields of a line: split at commas, whitespace around each trimmed.
fn fields(line: &str) -> Vec<&str> {
    line.split(',').map(str::trim).collect()
}

/// The text of the file (a leading byte-order mark dropped), or an error naming the line of
/// the first byte that is not UTF-8.
fn utf8_text<'a>(bytes: &'a [u8], origin: &str) -> Result<&'a str> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Ok(text.strip_prefix('\u{feff}').unwrap_or(text)),
        Err(e) => {
            let valid = bytes.get(..e.valid_up_to()).unwrap_or_default();
            let line = valid.iter().filter(|&&byte| byte == b'\n').count() + 1;
            Err(data_error(
                format!("{origin} line {line}"),
                "not UTF-8 text; expected a text file of comma-separated numbers",
            ))
        }
    }
}

/// The lines up to the last non-blank one, numbered from 1, '\r' dropped; errors for an
/// empty file or a blank line before the end.
fn data_lines<'a>(text: &'a str, origin: &str) -> Result<Vec<(usize, &'a str)>> {
    let mut lines: Vec<(usize, &str)> = text
        .split('\n')
        .map(|line| line.strip_suffix('\r').unwrap_or(line))
        .enumerate()
        .map(|(index, line)| (index + 1, line))
        .collect();
    let Some(last) = lines.iter().rposition(|(_, line)| !line.trim().is_empty()) else {
        return Err(data_error(
            origin,
            "empty file; expected lines of comma-separated numbers",
        ));
    };
    lines.truncate(last + 1);
    if let Some((line_number, _)) = lines.iter().find(|(_, line)| line.trim().is_empty()) {
        return Err(data_error(
            format!("{origin} line {line_number}"),
            "blank line; blank lines are allowed only at the end of the file",
        ));
    }
    Ok(lines)
}

/// A first line is a header when any of its fields is not a number.
fn is_header(fields: &[&str]) -> bool {
    fields.iter().any(|field| field.parse::<f64>().is_err())
}

/// The number of features in rows of `count` columns: all but the label column.
fn feature_width(count: usize, options: &CsvOptions, at: &str) -> Result<usize> {
    match options.label_column {
        None => Ok(count),
        Some(column) if column >= count => Err(data_error(
            at,
            format!(
                "the label column is column {} but rows have {count} columns",
                column + 1
            ),
        )),
        Some(_) if count == 1 => Err(data_error(
            at,
            "the only column is the label column; expected at least one feature column",
        )),
        Some(_) => Ok(count - 1),
    }
}

/// A feature: a finite number.
fn parse_number(field: &str, column: usize, at: &str) -> Result<f64> {
    let column = column + 1;
    if field.is_empty() {
        return Err(data_error(
            at,
            format!("column {column} is empty; expected a number"),
        ));
    }
    let value: f64 = field.parse().map_err(|_| {
        // A file separated by something else reads as one column of text.
        let hint = match [';', '\t', ' '].into_iter().find(|&c| field.contains(c)) {
            Some(c) => format!(" (columns are separated by commas, and this holds {c:?})"),
            None => String::new(),
        };
        data_error(
            at,
            format!("column {column} holds {field:?}; expected a number{hint}"),
        )
    })?;
    if value.is_nan() {
        return Err(data_error(
            at,
            format!("column {column} is NaN ({field:?}); expected a finite number"),
        ));
    }
    if value.is_infinite() {
        return Err(data_error(
            at,
            format!("column {column} is infinite ({field:?}); expected a finite number"),
        ));
    }
    if !fits_f32(value) {
        return Err(data_error(
            at,
            format!("column {column} is {field:?}, beyond the range of f32 (about ±3.4e38)"),
        ));
    }
    Ok(value)
}

/// A label: an integer in 0..=255.
fn parse_label(field: &str, column: usize, at: &str) -> Result<u8> {
    match field.parse::<f64>().ok().and_then(super::label_value) {
        Some(label) => Ok(label),
        None => Err(data_error(
            at,
            format!(
                "label {field:?} in column {} is not an integer in 0..=255",
                column + 1
            ),
        )),
    }
}
