//! Manifests and fixtures: reading a one-document YAML file, Pod Security Admission's own
//! fixtures, and [`subset`], which compares what the API server stored with what was sent.

use std::path::Path;

use serde_json::Value;

use crate::{Result, psa_source, repo_root};

/// Pod Security Admission's own `restricted` v1.36 fixtures of `kind` (`pass` or `fail`), sorted,
/// as (file stem, pod): from the Go module `k8s.io/pod-security-admission` v0.36.x, fetched and
/// cached by scripts/psa-fixtures.sh. Missing fixtures are an error naming that script.
pub fn psa_fixtures(kind: &str) -> Result<Vec<(String, Value)>> {
    Ok(psa_source::fixtures(&repo_root(), kind)?)
}

/// Reads a YAML (or JSON) file with one document.
pub fn read_manifest(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Ok(kube_harden::yaml::from_str(&text)?)
}

/// Checks that every field of `expected` is in `actual` with the same value (objects may have
/// more keys in `actual`, e.g. defaults the API server filled in; arrays must have the same
/// length). `null`, `[]` and `{}` count as absent, as the API server drops empty optional
/// fields when it stores an object. Returns the first difference.
pub fn subset(expected: &Value, actual: &Value) -> Result<(), String> {
    fn empty(v: &Value) -> bool {
        match v {
            Value::Null => true,
            Value::Array(a) => a.is_empty(),
            Value::Object(o) => o.is_empty(),
            _ => false,
        }
    }
    fn walk(e: &Value, a: &Value, path: &mut String) -> Result<(), String> {
        match (e, a) {
            (e, Value::Null) if empty(e) => Ok(()),
            (Value::Object(e), Value::Object(a)) => {
                for (k, ev) in e {
                    let len = path.len();
                    path.push('.');
                    path.push_str(k);
                    match a.get(k) {
                        Some(av) => walk(ev, av, path)?,
                        None if empty(ev) => {}
                        None => return Err(format!("{path}: missing, expected {ev}")),
                    }
                    path.truncate(len);
                }
                Ok(())
            }
            (Value::Array(e), Value::Array(a)) => {
                if e.len() != a.len() {
                    return Err(format!("{path}: {} items, expected {}", a.len(), e.len()));
                }
                for (i, (ev, av)) in e.iter().zip(a).enumerate() {
                    let len = path.len();
                    path.push_str(&format!("[{i}]"));
                    walk(ev, av, path)?;
                    path.truncate(len);
                }
                Ok(())
            }
            (e, a) if e == a => Ok(()),
            (e, a) => Err(format!("{path}: {a}, expected {e}")),
        }
    }
    walk(expected, actual, &mut String::new())
}
