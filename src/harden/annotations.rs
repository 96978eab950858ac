//! The `kube-harden.io/*` annotations the rules read and write: `skip` parsed into change
//! names, `skip` and `writable-paths` copied from a workload to its pod template, and the value
//! of `hardened` (what was applied, merged with what an earlier admission recorded).

use std::collections::HashSet;

use super::{ChangeName, SKIP_ANNOTATION, WRITABLE_PATHS_ANNOTATION, WorkloadKind, budget, hints};
use crate::dom::Json;

/// The workload's own `kube-harden.io/skip` and `kube-harden.io/writable-paths` that its pod
/// template lacks, to add there: the pods a controller creates carry only the template's
/// annotations, and would otherwise be hardened again without them at Pod admission. A value the
/// template sets is never changed; when it differs from the workload's, the template's applies
/// and a warning says so.
pub(super) fn template_annotations(
    object: &Json<'_>,
    kind: WorkloadKind,
    warnings: &mut budget::Warnings,
) -> Vec<(&'static str, String)> {
    if kind.template_metadata_path().is_none() {
        return Vec::new();
    }
    let template_meta = kind.template_metadata(object);
    let mut out = Vec::new();
    for key in [SKIP_ANNOTATION, WRITABLE_PATHS_ANNOTATION] {
        let Some(own) = annotation_of(object.get("metadata"), key) else {
            continue;
        };
        match annotation_of(template_meta, key) {
            None => {
                warnings.push(key, "", || {
                    format!("{key} copied to the pod template, so that its pods carry it")
                });
                out.push((key, own.to_owned()));
            }
            Some(template) if template != own => {
                warnings.push(key, "", || hints::conflict(kind, key, template));
            }
            Some(_) => {}
        }
    }
    out
}

/// An annotation's value in `metadata`, if set.
pub(super) fn annotation_of<'a>(meta: Option<&'a Json<'_>>, key: &str) -> Option<&'a str> {
    meta.and_then(|m| m.get("annotations"))
        .and_then(|a| a.get(key))
        .and_then(Json::as_str)
}

/// Parses `kube-harden.io/skip`: `"true"` skips every change; otherwise a comma-separated list.
pub(super) fn parse_skip(
    value: Option<&str>,
    warnings: &mut budget::Warnings,
) -> HashSet<ChangeName> {
    let Some(value) = value else {
        return HashSet::new();
    };
    if value.trim().eq_ignore_ascii_case("true") {
        return ChangeName::ALL.iter().copied().collect();
    }
    let mut skip = HashSet::new();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if item.eq_ignore_ascii_case("false") {
            continue;
        }
        // A lookup that allocates nothing: the annotation may repeat an unknown name a million
        // times.
        match ChangeName::ALL.iter().find(|n| n.as_str() == item) {
            Some(name) => {
                skip.insert(*name);
            }
            None => warnings.push(SKIP_ANNOTATION, item, || {
                format!(
                    "{SKIP_ANNOTATION}: unknown change name {}, ignored",
                    budget::quoted(item)
                )
            }),
        }
    }
    skip
}

/// The new value of the hardened annotation: the names already there plus the new ones, in
/// canonical order, so that repeated admissions produce the same value.
pub(super) fn merge_hardened_names(old: Option<&str>, applied: &[ChangeName]) -> String {
    let mut names: Vec<ChangeName> = old
        .unwrap_or_default()
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .chain(applied.iter().copied())
        .collect();
    names.sort();
    names.dedup();
    names
        .iter()
        .map(|n| n.as_str())
        .collect::<Vec<_>>()
        .join(",")
}
