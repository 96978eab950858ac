//! The answers check: what kube-harden answers to every input of the fuzz corpus and the
//! fixtures, one digest per input, so that a refactoring can show its answers are byte-identical
//! (`make answers BASE=<commit>` builds this tool against the base commit and against the
//! working tree and compares the two files).
//!
//! ```text
//! answers write <repo> <out>      one line per input: "<input>\t<sha-256 of its answers>"
//! answers compare <base> <new>    how many inputs, how many differ (exit 1 when any does)
//! answers show <repo> <input>     the answers to one input, in full (show-shape: normalised)
//! answers shape <repo> <out>      as `write`, each patch normalised (`kube_harden_fuzz::shape`):
//!                                 equal digests = same documents, patches differing at most in
//!                                 how they write the original's empty objects
//! answers replay <repo>           the fuzz targets' checks on every corpus input (exit 1 on a failure)
//! ```
//!
//! An input's answers are, in order: for an AdmissionReview, the `/mutate` and `/audit` answers
//! (`review`: status, body, outcome and error labels); for any text, what the offline command
//! (`kube-harden harden`) prints: the YAML, JSON and patch renderings, `--explain`,
//! `--findings`, the unserved-kind report and each document's error. The inputs are
//! `fuzz/corpus/review_bytes/*` (raw request bodies), `fuzz/corpus/review_pod/*` (the
//! structure-aware target's inputs, decoded as it decodes them), and the fixtures:
//! `examples/*.yaml`, `tests/fixtures/*`, `bench/fixtures/*.json`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use arbitrary::{Arbitrary, Unstructured};
use base64::prelude::{BASE64_STANDARD, Engine as _};
use kube_harden::admission::{Mode, review};
use kube_harden::harden::Policy;
use kube_harden::offline::{self, OutputFormat};
use kube_harden_fuzz::Input;
use kube_harden_fuzz::shape::normalised;
use serde_json::Value;

/// How many differing inputs `compare` names.
const SHOWN_DIFFS: usize = 10;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    if let Some(missing) = kube_harden_fuzz::review::missing_skip_name() {
        eprintln!(
            "answers: change name {missing} is not in the decoder's SKIP_NAMES (fuzz/src/review.rs): append it"
        );
        return ExitCode::from(2);
    }
    let result = match args.as_slice() {
        ["write", repo, out] => write(Path::new(repo), Path::new(out), Answers::AsSent),
        ["shape", repo, out] => write(Path::new(repo), Path::new(out), Answers::Normalised),
        ["compare", base, new] => compare(Path::new(base), Path::new(new)),
        ["show", repo, input] => show(Path::new(repo), input, Answers::AsSent),
        ["show-shape", repo, input] => show(Path::new(repo), input, Answers::Normalised),
        ["replay", repo] => replay(Path::new(repo)),
        _ => Err("usage: answers write|shape <repo> <out> | compare <base> <new> | show|show-shape <repo> <input> | replay <repo>".into()),
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("answers: {message}");
            ExitCode::from(2)
        }
    }
}

/// How an input is read.
#[derive(Clone, Copy)]
enum Source {
    /// A request body, as the `review_bytes` target takes it.
    Bytes,
    /// The `review_pod` target's bytes, decoded into an [`Input`].
    Structured,
    /// A fixture file: reviewed when it is an AdmissionReview, always hardened offline.
    Fixture,
}

/// Every input under `repo`, by its path relative to `repo`, sorted.
fn inputs(repo: &Path) -> Result<Vec<(String, Source)>, String> {
    let dirs: [(&str, Source, Option<&str>); 5] = [
        ("fuzz/corpus/review_bytes", Source::Bytes, None),
        ("fuzz/corpus/review_pod", Source::Structured, None),
        ("examples", Source::Fixture, Some(".yaml")),
        ("tests/fixtures", Source::Fixture, None),
        ("bench/fixtures", Source::Fixture, Some(".json")),
    ];
    let mut found = Vec::new();
    for (dir, source, suffix) in dirs {
        let entries = std::fs::read_dir(repo.join(dir)).map_err(|e| format!("{dir}: {e}"))?;
        for entry in entries {
            let entry = entry.map_err(|e| format!("{dir}: {e}"))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let is_file = entry
                .file_type()
                .map_err(|e| format!("{dir}/{name}: {e}"))?
                .is_file();
            if is_file && suffix.is_none_or(|s| name.ends_with(s)) {
                found.push((format!("{dir}/{name}"), source));
            }
        }
    }
    if found.is_empty() {
        return Err(format!("no inputs under {}", repo.display()));
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(found)
}

fn source_of(input: &str) -> Source {
    if input.starts_with("fuzz/corpus/review_bytes/") {
        Source::Bytes
    } else if input.starts_with("fuzz/corpus/review_pod/") {
        Source::Structured
    } else {
        Source::Fixture
    }
}

/// How the answers' patches are written.
#[derive(Clone, Copy, PartialEq)]
enum Answers {
    /// As kube-harden sends or prints them.
    AsSent,
    /// Normalised ([`normalised`]): the document each gives, the operations that write an empty
    /// object of the original as one marker.
    Normalised,
}

/// Everything kube-harden answers to `data`, as text.
fn answers(data: &[u8], source: Source, how: Answers) -> String {
    let mut out = String::new();
    match source {
        Source::Bytes => {
            for mode in [Mode::Enforce, Mode::Audit] {
                reviewed(&mut out, data, mode, &Policy::default(), how);
            }
            offline_answers(&mut out, data, how);
        }
        Source::Structured => {
            let Ok(input) = Input::arbitrary_take_rest(Unstructured::new(data)) else {
                out.push_str("== not an input of review_pod\n");
                return out;
            };
            let (body, object) = input.review();
            let body = serde_json::to_vec(&body).unwrap_or_default();
            reviewed(&mut out, &body, input.mode(), &input.policy(), how);
            offline_answers(
                &mut out,
                &serde_json::to_vec(&object).unwrap_or_default(),
                how,
            );
        }
        Source::Fixture => {
            let is_review = serde_json::from_slice::<Value>(data)
                .is_ok_and(|v| v.get("kind").and_then(Value::as_str) == Some("AdmissionReview"));
            if is_review {
                for mode in [Mode::Enforce, Mode::Audit] {
                    reviewed(&mut out, data, mode, &Policy::default(), how);
                }
            }
            offline_answers(&mut out, data, how);
        }
    }
    out
}

/// The handler's answer to `body`.
fn reviewed(out: &mut String, body: &[u8], mode: Mode, policy: &Policy, how: Answers) {
    let r = review(body, mode, policy);
    let error = r.report.error.as_ref().map_or("-", |(label, _)| label);
    let _ = writeln!(
        out,
        "== review {} status {} outcome {} error {error}",
        mode.as_str(),
        r.status,
        r.report.outcome.as_str()
    );
    match how {
        Answers::AsSent => out.push_str(&String::from_utf8_lossy(&r.body)),
        Answers::Normalised => out.push_str(&normalised_review(body, &r.body)),
    }
    out.push('\n');
}

/// The answer `answer` to the review `body` with its patch (if any) normalised against the
/// review's object; the answer as sent when it is not JSON or its patch cannot be read.
fn normalised_review(body: &[u8], answer: &[u8]) -> String {
    let as_sent = || String::from_utf8_lossy(answer).into_owned();
    let Ok(mut answer) = serde_json::from_slice::<Value>(answer) else {
        return as_sent();
    };
    let Some(patch) = answer.pointer_mut("/response/patch") else {
        return answer.to_string();
    };
    /// The review's object, the rest skipped without being read (as the handler does: the
    /// fuzz corpus has bodies whose other strings are not UTF-8).
    #[derive(serde::Deserialize)]
    struct Review {
        request: Option<Request>,
    }
    #[derive(serde::Deserialize)]
    struct Request {
        object: Option<Value>,
    }
    let object = serde_json::from_slice::<Review>(body)
        .ok()
        .and_then(|r| r.request?.object)
        .unwrap_or(Value::Null);
    let decoded = patch
        .as_str()
        .and_then(|p| BASE64_STANDARD.decode(p).ok())
        .and_then(|p| serde_json::from_slice::<json_patch::Patch>(&p).ok());
    *patch = match decoded.map(|p| normalised(&object, &p)) {
        Some(Ok(value)) => value,
        Some(Err(e)) => Value::String(e),
        None => Value::String("not a base64 RFC 6902 patch".into()),
    };
    answer.to_string()
}

/// What `kube-harden harden` prints for `data` (with every report flag).
fn offline_answers(out: &mut String, data: &[u8], how: Answers) {
    let Ok(text) = std::str::from_utf8(data) else {
        out.push_str("== offline: not UTF-8\n");
        return;
    };
    let outcome = offline::harden_stream(text, "input", &Policy::default());
    let documents = &outcome.documents;
    for (name, format) in [
        ("yaml", OutputFormat::Yaml),
        ("json", OutputFormat::Json),
        ("patch", OutputFormat::Patch),
    ] {
        let _ = writeln!(out, "== offline {name}");
        if how == Answers::Normalised && matches!(format, OutputFormat::Patch) {
            for doc in documents {
                match normalised(&doc.original, &doc.patch) {
                    Ok(value) => out.push_str(&value.to_string()),
                    Err(e) => out.push_str(&e),
                }
                out.push('\n');
            }
            continue;
        }
        match offline::render(documents, format) {
            Ok(text) => out.push_str(&text),
            Err(e) => {
                let _ = writeln!(out, "render error: {e}");
            }
        }
    }
    out.push_str("== offline explain\n");
    out.push_str(&offline::explain(documents));
    out.push_str("== offline findings\n");
    out.push_str(&offline::findings_report(documents));
    let _ = writeln!(out, "fail-on-findings {}", offline::has_findings(documents));
    out.push_str("== offline unserved\n");
    out.push_str(&offline::unserved_report(documents, "input"));
    out.push_str("== offline errors\n");
    for error in &outcome.errors {
        let _ = writeln!(out, "{error}");
    }
}

fn sha256_hex(text: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    digest.as_ref().iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn write(repo: &Path, out: &Path, how: Answers) -> Result<ExitCode, String> {
    let mut lines = String::new();
    let all = inputs(repo)?;
    for (input, source) in &all {
        let data = std::fs::read(repo.join(input)).map_err(|e| format!("{input}: {e}"))?;
        let _ = writeln!(
            lines,
            "{input}\t{}",
            sha256_hex(&answers(&data, *source, how))
        );
    }
    std::fs::write(out, lines).map_err(|e| format!("{}: {e}", out.display()))?;
    eprintln!("answers: {} inputs -> {}", all.len(), out.display());
    Ok(ExitCode::SUCCESS)
}

fn read_digests(path: &Path) -> Result<BTreeMap<String, String>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    text.lines()
        .map(|line| {
            line.split_once('\t')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .ok_or_else(|| format!("{}: not \"<input>\\t<digest>\": {line}", path.display()))
        })
        .collect()
}

fn compare(base: &Path, new: &Path) -> Result<ExitCode, String> {
    let (base, new) = (read_digests(base)?, read_digests(new)?);
    let mut differ = Vec::new();
    let mut only = Vec::new();
    for (input, digest) in &base {
        match new.get(input) {
            Some(other) if other == digest => {}
            Some(_) => differ.push(input.as_str()),
            None => only.push(format!("only in base: {input}")),
        }
    }
    only.extend(
        new.keys()
            .filter(|k| !base.contains_key(*k))
            .map(|k| format!("only in new: {k}")),
    );
    println!(
        "answers: {} inputs, {} differ, {} in one file only",
        base.len(),
        differ.len(),
        only.len()
    );
    for input in differ.iter().take(SHOWN_DIFFS) {
        println!("  differs: {input}");
    }
    for line in only.iter().take(SHOWN_DIFFS) {
        println!("  {line}");
    }
    Ok(if differ.is_empty() && only.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn show(repo: &Path, input: &str, how: Answers) -> Result<ExitCode, String> {
    let path: PathBuf = repo.join(input);
    let data = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    print!("{}", answers(&data, source_of(input), how));
    Ok(ExitCode::SUCCESS)
}

/// The fuzz targets' own checks on every committed corpus input.
fn replay(repo: &Path) -> Result<ExitCode, String> {
    let mut failed = Vec::new();
    let mut count = 0;
    for (input, source) in inputs(repo)? {
        let data = std::fs::read(repo.join(&input)).map_err(|e| format!("{input}: {e}"))?;
        let outcome = match source {
            Source::Bytes => std::panic::catch_unwind(|| kube_harden_fuzz::check_bytes(&data)),
            Source::Structured => std::panic::catch_unwind(|| {
                if let Ok(input) = Input::arbitrary_take_rest(Unstructured::new(&data)) {
                    kube_harden_fuzz::check_input(&input);
                }
            }),
            Source::Fixture => continue,
        };
        count += 1;
        if outcome.is_err() {
            failed.push(input);
        }
    }
    println!("replay: {count} corpus inputs, {} failed", failed.len());
    for input in &failed {
        println!("  failed: {input}");
    }
    Ok(if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
