//! `kube-harden harden`: the rules applied to manifest files, offline.
//!
//! Reads a YAML stream or JSON (objects, or a `kind: List`) as Kubernetes reads it ([`crate::yaml`]),
//! hardens every workload, and renders the documents in the same order as YAML, JSON, or one
//! RFC 6902 patch per line. A document that cannot be read or hardened is left out and reported
//! with its index, line and column; the others are still written, and the command exits
//! non-zero (docs/configuration.md, "Bad documents").

pub mod command;

use std::fmt::Write as _;

use serde_json::Value;

use crate::error::{Error, Result};
use crate::harden::{self, Change, Hardened, ImageLookup, Policy};
use crate::yaml;
use json_patch::Patch;
use json_patch::jsonptr::PointerBuf;

/// How `harden` prints its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// The hardened documents as a YAML stream.
    Yaml,
    /// The hardened documents as JSON, one object after another.
    Json,
    /// One line per input document: its RFC 6902 patch (`[]` when unchanged).
    Patch,
}

/// One input document, hardened.
#[derive(Debug)]
pub struct Document {
    /// The document as read.
    pub original: Value,
    /// The document with its patch applied.
    pub hardened: Value,
    /// The patch (paths from the document's root; under `/items/N` for a List).
    pub patch: Patch,
    /// Every decision, for `--explain`.
    pub changes: Vec<Change>,
    /// Problems with kube-harden annotations.
    pub warnings: Vec<String>,
    /// Risks left standing after hardening.
    pub findings: Vec<harden::Finding>,
    /// `restricted` checks the hardened pod specs still fail.
    pub restricted: Vec<crate::psa::Violation>,
    /// Workloads under an apiVersion the API server does not serve (left unchanged).
    pub unserved: Vec<String>,
    /// 1-based line where the document starts.
    pub line: usize,
    /// 1-based index of the document in the stream.
    pub index: usize,
}

/// Every document of a stream: hardened, or why not.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The documents read and hardened, in input order.
    pub documents: Vec<Document>,
    /// The documents that could not be read or hardened (left out of the output), in input
    /// order; each names its document index, line and column.
    pub errors: Vec<Error>,
}

/// Parses `input` (named `source_name` in errors) and hardens every document. A document that
/// fails is reported in [`Outcome::errors`]; the others are still hardened.
pub fn harden_stream(input: &str, source_name: &str, policy: &Policy) -> Outcome {
    harden_stream_with_images(input, source_name, policy, &ImageLookup::new())
}

/// [`harden_stream`] with what the images say about themselves (`--resolve-images`).
pub fn harden_stream_with_images(
    input: &str,
    source_name: &str,
    policy: &Policy,
    images: &ImageLookup,
) -> Outcome {
    let mut outcome = Outcome::default();
    for (i, read) in yaml::read_stream(input).into_iter().enumerate() {
        let document = i + 1;
        let read = match read {
            Ok(read) => read,
            Err(e) => {
                outcome.errors.push(Error::Manifest {
                    source_name: source_name.to_owned(),
                    document,
                    line: e.error.mark.line,
                    column: e.error.mark.column,
                    message: e.error.message,
                });
                continue;
            }
        };
        if !read.value.is_object() {
            outcome.errors.push(Error::Manifest {
                source_name: source_name.to_owned(),
                document,
                line: read.line,
                column: 1,
                message: "expected a mapping (a Kubernetes object)".into(),
            });
            continue;
        }
        match harden_document(&read.value, policy, images) {
            Ok(mut doc) => {
                doc.line = read.line;
                doc.index = document;
                outcome.documents.push(doc);
            }
            Err((item, source)) => {
                let mark =
                    locate(&read.value, &read.positions, item, &source).unwrap_or(yaml::Mark {
                        line: read.line,
                        column: 1,
                    });
                outcome.errors.push(Error::Harden {
                    source_name: source_name.to_owned(),
                    document,
                    line: mark.line,
                    column: mark.column,
                    source,
                });
            }
        }
    }
    outcome
}

/// Parses and hardens every document; the first failure is the error (for callers that want
/// all or nothing).
pub fn harden_documents(input: &str, source_name: &str, policy: &Policy) -> Result<Vec<Document>> {
    let outcome = harden_stream(input, source_name, policy);
    match outcome.errors.into_iter().next() {
        Some(e) => Err(e),
        None => Ok(outcome.documents),
    }
}

/// Where the field a rule error names was written: the deepest part of its path found in the
/// input (`spec.containers[app].securityContext` follows the container named `app`; a missing
/// pod spec is reported where its nearest parent is).
fn locate(
    document: &Value,
    positions: &yaml::Positions,
    item: Option<usize>,
    error: &harden::HardenError,
) -> Option<yaml::Mark> {
    let path = match error {
        harden::HardenError::WrongType { path, .. }
        | harden::HardenError::MissingPodSpec { path, .. } => path,
        harden::HardenError::NotAdditive { .. } | harden::HardenError::OverBudget { .. } => {
            return None;
        }
    };
    let mut pointer = item.map(|i| format!("/items/{i}")).unwrap_or_default();
    let mut found = positions.get(&pointer);
    for segment in path.split('.') {
        let (key, index) = match segment.split_once('[') {
            Some((key, rest)) => (key, rest.strip_suffix(']')),
            None => (segment, None),
        };
        pointer.push('/');
        pointer.push_str(&key.replace('~', "~0").replace('/', "~1"));
        found = positions.get(&pointer).or(found);
        if let Some(index) = index {
            // A container's name, or an index.
            let items = document.pointer(&pointer).and_then(Value::as_array)?;
            let position = items
                .iter()
                .position(|c| c.get("name").and_then(Value::as_str) == Some(index))
                .or_else(|| index.parse().ok())?;
            pointer.push_str(&format!("/{position}"));
            found = positions.get(&pointer).or(found);
        }
    }
    found
}

/// Renders hardened documents in the chosen format.
pub fn render(documents: &[Document], format: OutputFormat) -> Result<String, serde_json::Error> {
    let mut out = String::new();
    for (i, doc) in documents.iter().enumerate() {
        match format {
            OutputFormat::Yaml => {
                if i > 0 {
                    out.push_str("---\n");
                }
                out.push_str(&yaml::to_string(&doc.hardened));
            }
            OutputFormat::Json => {
                out.push_str(&serde_json::to_string_pretty(&doc.hardened)?);
                out.push('\n');
            }
            OutputFormat::Patch => {
                out.push_str(&serde_json::to_string(&doc.patch)?);
                out.push('\n');
            }
        }
    }
    Ok(out)
}

impl Document {
    /// The input's `kind` and `metadata.name`, `?` where missing.
    fn kind_name(&self) -> (&str, &str) {
        fn text(v: Option<&Value>) -> &str {
            v.and_then(Value::as_str).unwrap_or("?")
        }
        (
            text(self.original.get("kind")),
            text(self.original.pointer("/metadata/name")),
        )
    }
}

/// A human-readable account of the decisions, for `--explain` (written to stderr).
pub fn explain(documents: &[Document]) -> String {
    let mut out = String::new();
    for doc in documents {
        let (kind, name) = doc.kind_name();
        let _ = writeln!(
            out,
            "# document {} (line {}): {kind}/{name}",
            doc.index, doc.line
        );
        for change in &doc.changes {
            let _ = writeln!(out, "#   {change}");
        }
        for warning in &doc.warnings {
            let _ = writeln!(out, "#   warning: {warning}");
        }
    }
    out
}

/// The findings and `restricted` results of every workload, for `--findings` (written to
/// stderr). Documents without findings are listed as clean.
pub fn findings_report(documents: &[Document]) -> String {
    let mut out = String::new();
    for doc in documents {
        if harden::WorkloadKind::of_object(&doc.original).is_none()
            && doc.original.get("kind").and_then(Value::as_str) != Some("List")
        {
            continue;
        }
        let (kind, name) = doc.kind_name();
        let verdict = if doc.restricted.is_empty() {
            "passes Pod Security restricted".to_owned()
        } else {
            let checks: Vec<&str> = doc.restricted.iter().map(|v| v.check.as_str()).collect();
            format!("fails Pod Security restricted: {}", checks.join(", "))
        };
        let _ = writeln!(
            out,
            "{kind}/{name} (document {}, line {}): {} findings; {verdict}",
            doc.index,
            doc.line,
            doc.findings.len()
        );
        for finding in &doc.findings {
            let _ = writeln!(out, "  {finding}");
        }
        for violation in &doc.restricted {
            let _ = writeln!(out, "  restricted {violation}");
        }
    }
    out
}

/// One line per workload left unchanged because its apiVersion is not served (written to stderr
/// whatever the flags).
pub fn unserved_report(documents: &[Document], source_name: &str) -> String {
    let mut out = String::new();
    for doc in documents {
        for warning in &doc.unserved {
            let _ = writeln!(
                out,
                "warning: {source_name}: document {} (line {}): {warning}",
                doc.index, doc.line
            );
        }
    }
    out
}

/// Whether any document has a finding or fails `restricted` after hardening.
pub fn has_findings(documents: &[Document]) -> bool {
    documents
        .iter()
        .any(|d| !d.findings.is_empty() || !d.restricted.is_empty())
}

/// Hardens one document (a List item by item); an error names the List item it is in.
/// The distinct container images of the stream's workloads (List items included), for
/// `--resolve-images`. Documents that do not parse are skipped: [`harden_stream`] reports them.
pub fn images_in(input: &str) -> Vec<String> {
    let mut images: Vec<String> = Vec::new();
    for read in yaml::read_stream(input).into_iter().flatten() {
        let items = match read.value.get("items").and_then(Value::as_array) {
            Some(items) if read.value.get("kind").and_then(Value::as_str) == Some("List") => {
                items.iter().collect()
            }
            _ => vec![&read.value],
        };
        for item in items {
            if let Some(kind) = harden::WorkloadKind::of_object(item) {
                let item = crate::dom::Json::from(item);
                for image in crate::admission::images_of(&item, kind) {
                    if !images.iter().any(|known| known == image) {
                        images.push(image.to_owned());
                    }
                }
            }
        }
    }
    images
}

/// [`harden::harden_object`] with the image lookup.
fn harden_one(
    object: &Value,
    policy: &Policy,
    images: &ImageLookup,
) -> Result<Hardened, harden::HardenError> {
    match harden::WorkloadKind::of_object(object) {
        Some(kind) => harden::harden_workload_with_images(object, kind, policy, images),
        None => Ok(Hardened::default()),
    }
}

fn harden_document(
    original: &Value,
    policy: &Policy,
    images: &ImageLookup,
) -> Result<Document, (Option<usize>, harden::HardenError)> {
    let mut result = Hardened::default();
    let mut warnings = Vec::new();
    let is_list = original.get("kind").and_then(Value::as_str) == Some("List")
        && original.get("items").is_some_and(Value::is_array);
    if is_list {
        let items = original.get("items").and_then(Value::as_array);
        for (i, item) in items.into_iter().flatten().enumerate() {
            if let Some(unserved) = harden::WorkloadKind::unserved(item) {
                warnings.push(format!("items[{i}]: {unserved}"));
            }
            let item_result = harden_one(item, policy, images).map_err(|e| (Some(i), e))?;
            let prefix = PointerBuf::from_tokens(["items".to_owned(), i.to_string()]);
            result.patch.0.extend(
                item_result
                    .patch
                    .0
                    .into_iter()
                    .map(|op| rebase(op, &prefix)),
            );
            result.changes.extend(item_result.changes);
            result.warnings.extend(item_result.warnings);
            result.findings.extend(item_result.findings);
            if let Some(violations) = item_result.restricted {
                result
                    .restricted
                    .get_or_insert_with(Vec::new)
                    .extend(violations);
            }
        }
    } else {
        if let Some(unserved) = harden::WorkloadKind::unserved(original) {
            warnings.push(unserved.to_string());
        }
        result = harden_one(original, policy, images).map_err(|e| (None, e))?;
    }
    let mut hardened = original.clone();
    let patch = result.patch.to_json_patch();
    json_patch::patch(&mut hardened, &patch).map_err(|e| {
        (
            None,
            harden::HardenError::NotAdditive {
                path: e.path.to_string(),
            },
        )
    })?;
    Ok(Document {
        original: original.clone(),
        hardened,
        patch,
        changes: result.changes,
        warnings: result.warnings,
        findings: result.findings,
        restricted: result.restricted.unwrap_or_default(),
        unserved: warnings,
        line: 1,
        index: 1,
    })
}

/// The same operation with `prefix` in front of its path.
fn rebase(mut op: harden::Add, prefix: &PointerBuf) -> harden::Add {
    let mut path = prefix.clone();
    path.append(&op.path);
    op.path = path;
    op
}

#[cfg(test)]
mod tests;
