//! `kube-harden harden`: the rules applied to manifest files, offline.
//!
//! Reads a YAML stream or JSON (one object, or a `kind: List`), hardens every workload, and
//! renders the documents in the same order as YAML, JSON, or one RFC 6902 patch per line.
//! Output is built in memory and written only when every document succeeded, so a malformed
//! input never leaves half an output behind.

use std::fmt::Write as _;

use serde::Deserialize;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::harden::{self, Change, Hardened, Policy};
use json_patch::jsonptr::PointerBuf;
use json_patch::{Patch, PatchOperation};

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
    /// 1-based line where the document starts.
    pub line: usize,
}

/// Parses `input` (named `source_name` in errors) and hardens every document.
pub fn harden_documents(input: &str, source_name: &str, policy: &Policy) -> Result<Vec<Document>> {
    let values = parse_documents(input, source_name)?;
    values
        .into_iter()
        .enumerate()
        .map(|(i, (value, line))| {
            harden_document(value, policy)
                .map_err(|source| Error::Harden {
                    source_name: source_name.to_owned(),
                    document: i + 1,
                    line,
                    source,
                })
                .map(|mut doc| {
                    doc.line = line;
                    doc
                })
        })
        .collect()
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
                // Serialising a serde_json::Value to YAML cannot fail.
                out.push_str(&serde_yaml::to_string(&doc.hardened).unwrap_or_default());
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

/// A human-readable account of the decisions, for `--explain` (written to stderr).
pub fn explain(documents: &[Document]) -> String {
    let mut out = String::new();
    for (i, doc) in documents.iter().enumerate() {
        let kind = doc
            .original
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("?");
        let name = doc
            .original
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("?");
        let _ = writeln!(
            out,
            "# document {} (line {}): {kind}/{name}",
            i + 1,
            doc.line
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
    for (i, doc) in documents.iter().enumerate() {
        if harden::WorkloadKind::of_object(&doc.original).is_none()
            && doc.original.get("kind").and_then(Value::as_str) != Some("List")
        {
            continue;
        }
        let kind = doc
            .original
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("?");
        let name = doc
            .original
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("?");
        let verdict = if doc.restricted.is_empty() {
            "passes Pod Security restricted".to_owned()
        } else {
            let checks: Vec<&str> = doc.restricted.iter().map(|v| v.check.as_str()).collect();
            format!("fails Pod Security restricted: {}", checks.join(", "))
        };
        let _ = writeln!(
            out,
            "{kind}/{name} (document {}, line {}): {} findings; {verdict}",
            i + 1,
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

/// Whether any document has a finding or fails `restricted` after hardening.
pub fn has_findings(documents: &[Document]) -> bool {
    documents
        .iter()
        .any(|d| !d.findings.is_empty() || !d.restricted.is_empty())
}

fn harden_document(original: Value, policy: &Policy) -> Result<Document, harden::HardenError> {
    let mut result = Hardened::default();
    let is_list = original.get("kind").and_then(Value::as_str) == Some("List")
        && original.get("items").is_some_and(Value::is_array);
    if is_list {
        let items = original.get("items").and_then(Value::as_array);
        for (i, item) in items.into_iter().flatten().enumerate() {
            let item_result = harden::harden_object(item, policy)?;
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
        result = harden::harden_object(&original, policy)?;
    }
    let mut hardened = original.clone();
    json_patch::patch(&mut hardened, &result.patch).map_err(|e| {
        harden::HardenError::NotAdditive {
            path: e.to_string(),
        }
    })?;
    Ok(Document {
        original,
        hardened,
        patch: result.patch,
        changes: result.changes,
        warnings: result.warnings,
        findings: result.findings,
        restricted: result.restricted.unwrap_or_default(),
        line: 1,
    })
}

/// The same operation with `prefix` in front of its path.
fn rebase(op: PatchOperation, prefix: &PointerBuf) -> PatchOperation {
    match op {
        PatchOperation::Add(mut add) => {
            let mut path = prefix.clone();
            path.append(&add.path);
            add.path = path;
            PatchOperation::Add(add)
        }
        other => other,
    }
}

/// The documents of a JSON value or YAML stream, with the line each starts on. Empty YAML
/// documents are dropped.
fn parse_documents(input: &str, source_name: &str) -> Result<Vec<(Value, usize)>> {
    let manifest_error = |document, line, message: String| Error::Manifest {
        source_name: source_name.to_owned(),
        document,
        line,
        message,
    };
    let trimmed = input.trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        let value: Value =
            serde_json::from_str(input).map_err(|e| manifest_error(1, e.line(), e.to_string()))?;
        return match value {
            Value::Object(_) => Ok(vec![(value, 1)]),
            _ => Err(manifest_error(1, 1, "expected a JSON object".into())),
        };
    }
    let starts = document_start_lines(input);
    let mut documents = Vec::new();
    for (i, de) in serde_yaml::Deserializer::from_str(input).enumerate() {
        let line = starts.get(i).copied().unwrap_or(1);
        let value = Value::deserialize(de).map_err(|e| {
            let line = e.location().map_or(line, |l| l.line());
            manifest_error(i + 1, line, e.to_string())
        })?;
        match value {
            Value::Null => {}
            Value::Object(_) => documents.push((value, line)),
            _ => {
                return Err(manifest_error(
                    i + 1,
                    line,
                    "expected a mapping (a Kubernetes object)".into(),
                ));
            }
        }
    }
    Ok(documents)
}

/// The line on which each YAML document starts (after each `---` marker), for error messages.
fn document_start_lines(input: &str) -> Vec<usize> {
    // 0 while a document's first content line is not yet known.
    let mut starts = vec![0];
    let mut seen_content = false;
    for (n, line) in input.lines().enumerate() {
        if line == "---" || line.starts_with("--- ") {
            if seen_content {
                starts.push(0);
            }
            // Content after the marker on the same line starts the document there.
            let inline = line.len() > 4;
            if let Some(start) = starts.last_mut() {
                *start = if inline { n + 1 } else { 0 };
            }
            seen_content = inline;
        } else if !line.trim().is_empty() && !line.trim_start().starts_with('#') {
            seen_content = true;
            if let Some(start) = starts.last_mut().filter(|s| **s == 0) {
                *start = n + 1;
            }
        }
    }
    starts.iter().map(|&s| s.max(1)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_lines_follow_markers() {
        assert_eq!(document_start_lines("a: 1\n---\nb: 2\n"), vec![1, 3]);
        assert_eq!(document_start_lines("---\na: 1\n---\nb: 2\n"), vec![2, 4]);
        assert_eq!(document_start_lines("# c\n---\na: 1\n"), vec![3]);
        assert_eq!(
            document_start_lines("# c\n\na: 1\n---\n\nb: 2\n"),
            vec![3, 6]
        );
        assert_eq!(document_start_lines("--- {a: 1}\n--- {b: 2}\n"), vec![1, 2]);
    }

    #[test]
    fn malformed_yaml_names_document_and_line() {
        let input = "apiVersion: v1\nkind: Pod\n---\napiVersion: v1\nkind: [unclosed\n";
        let err = harden_documents(input, "in.yaml", &Policy::default()).unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("in.yaml: document 2 (line 6)"), "{msg}");
    }

    #[test]
    fn scalar_documents_are_rejected() {
        let err = harden_documents("just a string\n", "in.yaml", &Policy::default()).unwrap_err();
        assert!(err.to_string().contains("document 1"), "{err}");
        let err = harden_documents("[1, 2]", "in.json", &Policy::default()).unwrap_err();
        assert!(err.to_string().contains("expected a JSON object"), "{err}");
    }

    #[test]
    fn wrong_types_name_the_field() {
        let input = "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec:\n  containers: nope\n";
        let err = harden_documents(input, "in.yaml", &Policy::default()).unwrap_err();
        assert!(
            err.to_string().contains("spec.containers: expected a list"),
            "{err}"
        );
    }
}
