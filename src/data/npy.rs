//! NumPy .npy arrays (format versions 1.0, 2.0 and 3.0): the magic "\x93NUMPY", a version,
//! a little-endian header length (u16 in 1.0, u32 after), a Python dict literal with
//! 'descr', 'fortran_order' and 'shape', then the data in C order. Arrays of shape
//! (rows, features) or (rows, height, width) of u1, f4, f8, i4 or i8 (little-endian) are
//! read; values are scaled to [0, 1] by the rule in `scaling.rs`.

use std::path::Path;

use super::file::{data_error, read_bytes};
use super::scaling::{fits_f32, scaling_for_new_rows, ScalingChooser};
use super::{Dataset, Pixels, Scaling};
use crate::error::Result;

const MAGIC: &[u8] = b"\x93NUMPY";
const SUPPORTED: &str = "'|u1', '<f4', '<f8', '<i4', '<i8'";

/// Loads a .npy array of shape (rows, features) or (rows, height, width); the latter is
/// flattened to rows of height × width values with `image_shape` (height, width). Values
/// are scaled like CSV values (see [`Dataset::scaling`]); when they are all integers in
/// 0..=255 (but not all 0 or 1) they are kept as bytes ([`Pixels::U8`], divided by 255).
pub fn load_npy(path: &Path) -> Result<Dataset> {
    load_npy_scaled(path, None)
}

/// [`load_npy`], the values mapped to [0, 1] by `scaling` where given (a run's, so that new
/// rows map as its data did; rows already in [0, 1] stay so where it divides) instead of
/// the rule.
pub fn load_npy_scaled(path: &Path, scaling: Option<&Scaling>) -> Result<Dataset> {
    let origin = path.display().to_string();
    let bytes = read_bytes(path)?;
    let (values, image_shape) = read_array(&bytes, &origin)?;
    let width = values.width;
    let own = values.choose_scaling()?;
    let scaling = match scaling {
        Some(run) => scaling_for_new_rows(run, own.clone(), width, &origin)?,
        None => own.clone(),
    };
    // Bytes only when every value is one: dividing by 255 is then exact.
    let pixels = values.pixels(&scaling, own == Scaling::Divide(255.0))?;
    let name = path
        .file_name()
        .map_or(origin.clone(), |name| name.to_string_lossy().into_owned());
    Dataset::new(name, width, pixels, None, image_shape, scaling)
}

/// One integer label in 0..=255 per row, from a .npy array of shape (rows,) or (rows, 1) of
/// any supported type (labels kept apart from their data set's .npy, as `y` beside `X`).
pub fn load_npy_labels(path: &Path) -> Result<Vec<u8>> {
    let origin = path.display().to_string();
    let bytes = read_bytes(path)?;
    let (header, data) = split_header(&bytes, &origin)?;
    let array = parse_header(&header, &origin)?;
    let rows = match array.shape[..] {
        [rows] | [rows, 1] if rows > 0 => rows,
        _ => {
            return Err(data_error(
                &origin,
                format!(
                    "shape {}; expected labels of shape (rows,) or (rows, 1)",
                    array.shape_text()
                ),
            ))
        }
    };
    let size = array.descr.size();
    if rows.checked_mul(size) != Some(data.len()) {
        return Err(data_error(
            &origin,
            format!(
                "the data holds {} bytes; shape {} of {} needs {}",
                data.len(),
                array.shape_text(),
                array.descr.name(),
                rows.saturating_mul(size)
            ),
        ));
    }
    data.chunks_exact(size)
        .enumerate()
        .map(|(row, element)| {
            let value = array.descr.decode(element).unwrap_or(f64::NAN);
            super::label_value(value).ok_or_else(|| {
                data_error(
                    &origin,
                    format!("label {value} at row {row} is not an integer in 0..=255"),
                )
            })
        })
        .collect()
}

/// The header checked against the file length, and the values ready to read row by row;
/// with the image shape for (n, h, w) arrays.
fn read_array<'a>(
    bytes: &'a [u8],
    origin: &'a str,
) -> Result<(Values<'a>, Option<(usize, usize)>)> {
    let (header, data) = split_header(bytes, origin)?;
    let array = parse_header(&header, origin)?;
    let Layout {
        rows,
        width,
        image_shape,
    } = array.layout(origin)?;
    let expected = rows
        .checked_mul(width)
        .and_then(|count| count.checked_mul(array.descr.size()));
    if expected != Some(data.len()) {
        return Err(data_error(
            origin,
            format!(
                "the data holds {} bytes; shape {} of {} needs {}",
                data.len(),
                array.shape_text(),
                array.descr.name(),
                expected.map_or("more than fits in memory".to_string(), |n| n.to_string())
            ),
        ));
    }
    Ok((
        Values {
            data,
            descr: array.descr,
            width,
            origin,
        },
        image_shape,
    ))
}

/// The values of a .npy file as they are, unscaled (latent codes, say): (values row-major,
/// width). Same checks as [`load_npy`].
pub fn load_npy_raw(path: &Path) -> Result<(Vec<f32>, usize)> {
    let origin = path.display().to_string();
    let bytes = read_bytes(path)?;
    let (values, _) = read_array(&bytes, &origin)?;
    let mut row = Vec::with_capacity(values.width);
    let mut out = Vec::with_capacity(values.data.len() / values.descr.size());
    for (index, raw) in values.rows() {
        values.row(index, raw, &mut row)?;
        out.extend(row.iter().map(|&v| v as f32));
    }
    Ok((out, values.width))
}

/// The element types read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Descr {
    U1,
    F4,
    F8,
    I4,
    I8,
}

impl Descr {
    fn parse(text: &str) -> Option<Descr> {
        match text {
            "|u1" | "<u1" => Some(Descr::U1),
            "<f4" => Some(Descr::F4),
            "<f8" => Some(Descr::F8),
            "<i4" => Some(Descr::I4),
            "<i8" => Some(Descr::I8),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Descr::U1 => "|u1",
            Descr::F4 => "<f4",
            Descr::F8 => "<f8",
            Descr::I4 => "<i4",
            Descr::I8 => "<i8",
        }
    }

    /// Bytes per element.
    fn size(self) -> usize {
        match self {
            Descr::U1 => 1,
            Descr::F4 | Descr::I4 => 4,
            Descr::F8 | Descr::I8 => 8,
        }
    }

    /// One element from exactly `size()` bytes.
    fn decode(self, bytes: &[u8]) -> Option<f64> {
        match self {
            Descr::U1 => bytes.first().map(|&byte| f64::from(byte)),
            Descr::F4 => Some(f64::from(f32::from_le_bytes(bytes.try_into().ok()?))),
            Descr::F8 => Some(f64::from_le_bytes(bytes.try_into().ok()?)),
            Descr::I4 => Some(f64::from(i32::from_le_bytes(bytes.try_into().ok()?))),
            Descr::I8 => Some(i64::from_le_bytes(bytes.try_into().ok()?) as f64),
        }
    }
}

/// How the array maps to a data set.
struct Layout {
    rows: usize,
    /// Values per row: features, or height × width.
    width: usize,
    image_shape: Option<(usize, usize)>,
}

/// What the header dict says.
struct ArrayHeader {
    descr: Descr,
    shape: Vec<usize>,
}

impl ArrayHeader {
    /// The layout of shapes (rows, width) and (rows, height, width).
    fn layout(&self, origin: &str) -> Result<Layout> {
        let (rows, width, image_shape) = match self.shape[..] {
            [rows, width] => (rows, width, None),
            [rows, height, width] => (
                rows,
                // An overflow fails the length check below.
                height.saturating_mul(width),
                Some((height, width)),
            ),
            _ => {
                return Err(data_error(
                    origin,
                    format!(
                        "shape {} has {} dimensions; expected (rows, features) or (rows, height, width)",
                        self.shape_text(),
                        self.shape.len()
                    ),
                ))
            }
        };
        if rows == 0 || width == 0 {
            return Err(data_error(
                origin,
                format!(
                    "shape {} holds no values; expected at least one row of at least one value",
                    self.shape_text()
                ),
            ));
        }
        Ok(Layout {
            rows,
            width,
            image_shape,
        })
    }

    /// The shape as Python writes it: "(3, 4)".
    fn shape_text(&self) -> String {
        let dims: Vec<String> = self.shape.iter().map(usize::to_string).collect();
        if dims.len() == 1 {
            format!("({},)", dims.join(""))
        } else {
            format!("({})", dims.join(", "))
        }
    }
}

/// Checks the magic and version; returns the header text and the data after it.
fn split_header<'a>(bytes: &'a [u8], origin: &str) -> Result<(String, &'a [u8])> {
    if !bytes.starts_with(MAGIC) {
        return Err(data_error(
            origin,
            "not a .npy file: expected the magic bytes \\x93NUMPY at the start",
        ));
    }
    let major = bytes.get(6).copied();
    let minor = bytes.get(7).copied();
    let (length_bytes, utf8) = match (major, minor) {
        (Some(1), Some(0)) => (2, false),
        (Some(2), Some(0)) => (4, false),
        (Some(3), Some(0)) => (4, true),
        (Some(major), Some(minor)) => {
            return Err(data_error(
                origin,
                format!(".npy format version {major}.{minor}; expected 1.0, 2.0 or 3.0"),
            ))
        }
        _ => return Err(data_error(origin, "file ends inside the .npy preamble")),
    };
    let header_start = 8 + length_bytes;
    let header_len = bytes.get(8..header_start).map(|field| {
        field
            .iter()
            .rev()
            .fold(0usize, |len, &byte| (len << 8) | usize::from(byte))
    });
    let header_end = header_len.and_then(|len| header_start.checked_add(len));
    let Some(header) = header_end.and_then(|end| bytes.get(header_start..end)) else {
        return Err(data_error(
            origin,
            "file ends inside the .npy header; the file is truncated",
        ));
    };
    let text = if utf8 {
        std::str::from_utf8(header)
            .map_err(|_| data_error(origin, "the .npy 3.0 header is not UTF-8"))?
            .to_string()
    } else {
        header.iter().map(|&byte| char::from(byte)).collect()
    };
    let data = header_end
        .and_then(|end| bytes.get(end..))
        .unwrap_or_default();
    Ok((text, data))
}

/// Reads the header dict: {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }.
fn parse_header(text: &str, origin: &str) -> Result<ArrayHeader> {
    let bad = |what: &str| {
        data_error(
            origin,
            format!("{what} in the .npy header {:?}", text.trim_end()),
        )
    };
    let mut parser = Parser { rest: text };
    let mut descr = None;
    let mut fortran_order = None;
    let mut shape = None;
    parser.require('{').ok_or_else(|| bad("expected '{'"))?;
    loop {
        if parser.eat('}') {
            break;
        }
        let key = parser
            .string()
            .ok_or_else(|| bad("expected a quoted key"))?;
        parser.require(':').ok_or_else(|| bad("expected ':'"))?;
        match key.as_str() {
            "descr" => {
                descr = Some(
                    parser
                        .string()
                        .ok_or_else(|| bad("expected a string for 'descr'"))?,
                )
            }
            "fortran_order" => {
                fortran_order = Some(
                    parser
                        .boolean()
                        .ok_or_else(|| bad("expected True or False for 'fortran_order'"))?,
                )
            }
            "shape" => {
                shape = Some(
                    parser
                        .tuple()
                        .ok_or_else(|| bad("expected a tuple of integers for 'shape'"))?,
                )
            }
            _ => return Err(bad(&format!("unexpected key {key:?}"))),
        }
        if !parser.eat(',') {
            parser
                .require('}')
                .ok_or_else(|| bad("expected ',' or '}'"))?;
            break;
        }
    }
    let descr = descr.ok_or_else(|| bad("no 'descr'"))?;
    let shape = shape.ok_or_else(|| bad("no 'shape'"))?;
    if fortran_order.ok_or_else(|| bad("no 'fortran_order'"))? {
        return Err(data_error(
            origin,
            "fortran_order is True; expected an array in C order (save np.ascontiguousarray(x))",
        ));
    }
    let descr = Descr::parse(&descr).ok_or_else(|| {
        data_error(
            origin,
            format!("unsupported dtype {descr:?}; supported: {SUPPORTED}"),
        )
    })?;
    Ok(ArrayHeader { descr, shape })
}

/// A reader over the header dict's text: strings, True/False and tuples of integers.
struct Parser<'a> {
    rest: &'a str,
}

impl Parser<'_> {
    /// Skips whitespace, then consumes `c` if it comes next.
    fn eat(&mut self, c: char) -> bool {
        self.rest = self.rest.trim_start();
        match self.rest.strip_prefix(c) {
            Some(rest) => {
                self.rest = rest;
                true
            }
            None => false,
        }
    }

    fn require(&mut self, c: char) -> Option<()> {
        self.eat(c).then_some(())
    }

    /// A string in single or double quotes (no escapes: .npy keys and dtypes have none).
    fn string(&mut self) -> Option<String> {
        self.rest = self.rest.trim_start();
        let quote = self
            .rest
            .chars()
            .next()
            .filter(|c| *c == '\'' || *c == '"')?;
        let body = self.rest.get(1..)?;
        let end = body.find(quote)?;
        let value = body.get(..end)?.to_string();
        self.rest = body.get(end + 1..)?;
        Some(value)
    }

    fn boolean(&mut self) -> Option<bool> {
        self.rest = self.rest.trim_start();
        for (word, value) in [("True", true), ("False", false)] {
            if let Some(rest) = self.rest.strip_prefix(word) {
                self.rest = rest;
                return Some(value);
            }
        }
        None
    }

    /// A tuple of non-negative integers: (), (3,), (3, 4) (an old "L" suffix is allowed).
    fn tuple(&mut self) -> Option<Vec<usize>> {
        self.require('(')?;
        let mut values = Vec::new();
        loop {
            if self.eat(')') {
                return Some(values);
            }
            self.rest = self.rest.trim_start();
            let digits = self
                .rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(self.rest.len());
            values.push(self.rest.get(..digits)?.parse().ok()?);
            self.rest = self.rest.get(digits..)?;
            self.eat('L');
            if !self.eat(',') {
                self.require(')')?;
                return Some(values);
            }
        }
    }
}

/// The data of an array, read row by row.
struct Values<'a> {
    data: &'a [u8],
    descr: Descr,
    width: usize,
    origin: &'a str,
}

impl Values<'_> {
    /// Decodes row `row` (counting from 0) into `out`; errors for NaN, infinity or a value
    /// beyond the range of f32, naming the element.
    fn row(&self, row: usize, bytes: &[u8], out: &mut Vec<f64>) -> Result<()> {
        out.clear();
        for (column, element) in bytes.chunks_exact(self.descr.size()).enumerate() {
            // chunks_exact gives whole elements, so decode always has a value.
            let value = self.descr.decode(element).unwrap_or(f64::NAN);
            if !fits_f32(value) {
                return Err(data_error(
                    self.origin,
                    format!(
                        "value {value} at flat index {} (row {row}, column {column}); expected finite numbers within the range of f32",
                        row * self.width + column
                    ),
                ));
            }
            out.push(value);
        }
        Ok(())
    }

    fn rows(&self) -> impl Iterator<Item = (usize, &[u8])> {
        self.data
            .chunks_exact(self.width * self.descr.size())
            .enumerate()
    }

    /// Reads every value once and picks the scaling.
    fn choose_scaling(&self) -> Result<Scaling> {
        let mut chooser = ScalingChooser::new(self.width);
        let mut row = Vec::with_capacity(self.width);
        for (index, bytes) in self.rows() {
            self.row(index, bytes, &mut row)?;
            chooser.push_row(&row);
        }
        Ok(chooser.choose())
    }

    /// The values scaled: bytes when the scaling divides by 255 and every value is an
    /// integer in 0..=255 (`all_bytes`), else f32.
    fn pixels(&self, scaling: &Scaling, all_bytes: bool) -> Result<Pixels> {
        let mut row = Vec::with_capacity(self.width);
        if all_bytes && *scaling == Scaling::Divide(255.0) {
            let mut bytes = Vec::with_capacity(self.data.len() / self.descr.size());
            for (index, raw) in self.rows() {
                self.row(index, raw, &mut row)?;
                bytes.extend(row.iter().map(|&value| value as u8));
            }
            return Ok(Pixels::U8(bytes));
        }
        let mut values = Vec::with_capacity(self.data.len() / self.descr.size());
        for (index, raw) in self.rows() {
            self.row(index, raw, &mut row)?;
            values.extend(scaling.apply(&row)?);
        }
        Ok(Pixels::F32(values))
    }
}
