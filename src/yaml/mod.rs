//! YAML as Kubernetes reads it: the one place kube-harden reads and writes YAML (manifests for
//! `harden`, the policy file for every command).
//!
//! kubectl and the API server read YAML 1.1 through sigs.k8s.io/yaml over go-yaml v2: `0755`
//! is 493, `yes`/`off` are booleans, `<<: *anchor` merges, timestamps stay strings. A YAML 1.2
//! reader disagrees on all of these and would turn a manifest Kubernetes accepts into one it
//! rejects or reads differently. So:
//!
//! - **Reading**: granit-parser (a maintained YAML parser) does the parsing; [`resolve`] gives
//!   scalars go-yaml v2's meaning and [`tree`] applies go-yaml v2's merges and aliases and
//!   sigs.k8s.io/yaml's conversion to JSON. A stream is split into documents on `---` lines as
//!   kubectl splits it (k8s.io/apimachinery's `YAMLReader`), so a broken document does not hide
//!   the others. A test compares the result with Kubernetes' own code (tests/yaml-oracle).
//! - **Writing**: serde-saphyr's serializer in its YAML 1.1 mode, which quotes every string that
//!   a YAML 1.1 reader (go-yaml included) or a YAML 1.2 reader would read as something else
//!   (`"no"`, `"0755"`, `"1_000"`, `"1:20"`, `"2001-12-14"`, `"0o17"`, `".inf"`...), and keeps
//!   the key order of the JSON value.
//!
//! See docs/configuration.md ("How manifests are read") for the user-facing rules.

mod resolve;
mod tree;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt;

use serde::Deserialize as _;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// A position in the input: 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Mark {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

impl fmt::Display for Mark {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)
    }
}

/// Where each value of a document was written: JSON pointer (`/spec/containers/0`) to the
/// position of its key (or sequence item).
#[derive(Debug, Clone, Default)]
pub struct Positions(HashMap<String, Mark>);

impl Positions {
    /// Records where the value at `pointer` was written (a later key, or merge, that
    /// overwrites the value overwrites its position too).
    fn insert(&mut self, pointer: String, mark: Mark) {
        self.0.insert(pointer, mark);
    }

    /// The position of the value at `pointer`, if it was written in the input.
    pub fn get(&self, pointer: &str) -> Option<Mark> {
        self.0.get(pointer).copied()
    }
}

/// YAML that Kubernetes would not accept either, with where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{mark}: {message}")]
pub struct YamlError {
    /// Where the problem is.
    pub mark: Mark,
    /// What is wrong.
    pub message: String,
}

/// One document of a stream, read.
#[derive(Debug, Clone)]
pub struct Document {
    /// The document as the JSON Kubernetes would see.
    pub value: Value,
    /// Where its values were written.
    pub positions: Positions,
    /// 1-based line where its content starts.
    pub line: usize,
}

/// A document that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error}")]
pub struct DocumentError {
    /// The problem, with its position in the whole input.
    pub error: YamlError,
}

/// Reads a stream: JSON objects (input starting with `{`, as kubectl guesses) or YAML documents
/// separated by `---` lines. Empty and null documents are left out, as kubectl leaves them out;
/// each remaining document is read on its own, so one that is broken is reported while the others
/// are still read.
pub fn read_stream(input: &str) -> Vec<Result<Document, DocumentError>> {
    if input.trim_start().starts_with('{')
        && let Some(documents) = read_json_stream(input)
    {
        return documents;
    }
    let mut out = Vec::new();
    for (first_line, section) in sections(input) {
        let offset = |mut mark: Mark| {
            mark.line += first_line - 1;
            mark
        };
        let section = match section {
            Ok(text) => text,
            Err(message) => {
                let mark = offset(Mark { line: 1, column: 1 });
                out.push(Err(DocumentError {
                    error: YamlError { mark, message },
                }));
                continue;
            }
        };
        match read_section(section) {
            Ok(None) => {}
            Ok(Some((value, positions, mut mark))) => {
                mark = offset(mark);
                let positions = Positions(
                    positions
                        .0
                        .into_iter()
                        .map(|(k, m)| (k, offset(m)))
                        .collect(),
                );
                out.push(Ok(Document {
                    value,
                    positions,
                    line: mark.line,
                }));
            }
            Err(mut error) => {
                error.mark = offset(error.mark);
                out.push(Err(DocumentError { error }));
            }
        }
    }
    out
}

/// One `---` section: `None` when empty or null.
fn read_section(text: &str) -> Result<Option<(Value, Positions, Mark)>, YamlError> {
    let graphs = tree::compose(text)?;
    let mut graphs = graphs.into_iter();
    let Some(graph) = graphs.next() else {
        return Ok(None);
    };
    if let Some(second) = graphs.next() {
        return Err(YamlError {
            mark: second.start(),
            message: "a second YAML document in one `---` section (after `...`): kubectl reads \
                      only the first; separate documents with a `---` line"
                .into(),
        });
    }
    let start = graph.start();
    let (value, positions) = tree::to_json(&graph)?;
    Ok((!value.is_null()).then_some((value, positions, start)))
}

/// A JSON stream (objects one after another); `None` when the first object does not parse as
/// JSON, so that the input is read as YAML (as kubectl falls back).
fn read_json_stream(input: &str) -> Option<Vec<Result<Document, DocumentError>>> {
    let mut out = Vec::new();
    let mut stream = serde_json::Deserializer::from_str(input).into_iter::<Value>();
    loop {
        let start = stream.byte_offset();
        let line = line_of(input, start);
        match stream.next() {
            None => return Some(out),
            Some(Ok(value)) => out.push(Ok(Document {
                value,
                positions: Positions::default(),
                line,
            })),
            Some(Err(_)) if out.is_empty() => return None,
            Some(Err(e)) => {
                out.push(Err(DocumentError {
                    error: YamlError {
                        mark: Mark {
                            line: e.line(),
                            column: e.column(),
                        },
                        message: e.to_string(),
                    },
                }));
                return Some(out);
            }
        }
    }
}

/// 1-based line of the first non-blank character at or after `offset`.
fn line_of(input: &str, offset: usize) -> usize {
    let rest = &input[offset..];
    let skipped = rest.len() - rest.trim_start().len();
    input[..offset + skipped].matches('\n').count() + 1
}

/// The `---` sections of a YAML stream with the 1-based line each starts on, as
/// k8s.io/apimachinery's `YAMLReader` cuts them: a line starting with `---` ends a section;
/// anything but blanks or a comment after the `---` is an error.
fn sections(input: &str) -> Vec<(usize, Result<&str, String>)> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut start_line = 1;
    let mut offset = 0;
    for (n, line) in input.split_inclusive('\n').enumerate() {
        if let Some(rest) = line.strip_prefix("---") {
            let rest = rest.trim();
            if start < offset {
                out.push((start_line, Ok(&input[start..offset])));
            }
            if !rest.is_empty() && !rest.starts_with('#') {
                out.push((
                    n + 1,
                    Err(format!(
                        "invalid document separator `---{}`: kubectl allows only a comment after \
                         `---`; put the content on the next line",
                        line.trim_end().strip_prefix("---").unwrap_or_default()
                    )),
                ));
            }
            start = offset + line.len();
            start_line = n + 2;
        }
        offset += line.len();
    }
    if start < input.len() {
        out.push((start_line, Ok(&input[start..])));
    }
    out
}

/// Reads a single YAML document into `T` (the policy file), with Kubernetes' YAML 1.1 reading.
/// An empty document is `null`. Errors name the field and its position.
pub fn from_str<T: DeserializeOwned>(input: &str) -> Result<T, YamlError> {
    let (value, positions) = match read_section(input)? {
        Some((value, positions, _)) => (value, positions),
        None => (Value::Null, Positions::default()),
    };
    serde_path_to_error::deserialize(value).map_err(|e| {
        let pointer: String = e
            .path()
            .iter()
            .filter_map(|segment| match segment {
                serde_path_to_error::Segment::Seq { index } => Some(format!("/{index}")),
                serde_path_to_error::Segment::Map { key } => Some(format!("/{key}")),
                _ => None,
            })
            .collect();
        let field = e.path().to_string();
        let mark = positions
            .get(&pointer)
            .unwrap_or(Mark { line: 1, column: 1 });
        let message = if field == "." {
            e.inner().to_string()
        } else {
            format!("{field}: {}", e.inner())
        };
        YamlError { mark, message }
    })
}

/// For `#[serde(deserialize_with)]` on a string field that Kubernetes also accepts as a number
/// (a quantity such as `cpu: 1`): the number's JSON text.
pub fn string_or_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match Value::deserialize(d)? {
        Value::String(s) => Ok(s),
        Value::Number(n) => Ok(n.to_string()),
        other => Err(serde::de::Error::invalid_type(
            match &other {
                Value::Bool(b) => serde::de::Unexpected::Bool(*b),
                Value::Null => serde::de::Unexpected::Unit,
                Value::Array(_) => serde::de::Unexpected::Seq,
                _ => serde::de::Unexpected::Map,
            },
            &"a string or a number",
        )),
    }
}

/// Writes `value` as one YAML document (no `---`), keeping its key order, with every string
/// that a YAML 1.1 or 1.2 reader would read as another type quoted.
pub fn to_string(value: &Value) -> String {
    let options = serde_saphyr::ser_options! {
        // YAML 1.1 quoting: also quotes `yes`, `0755`, `1_000`, `1:20`, timestamps...
        yaml_12: false,
        // Long single-line strings stay on one line (folding would be correct, but harder to
        // read in a diff against the input).
        folded_wrap_chars: usize::MAX,
        min_fold_chars: usize::MAX,
        compact_list_indent: true,
    };
    let mut out = String::new();
    // Serialising a serde_json::Value (string keys, finite numbers) cannot fail.
    if serde_saphyr::to_fmt_writer_with_options(&mut out, value, options).is_err() {
        out.clear();
    }
    out
}
