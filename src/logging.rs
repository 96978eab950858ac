//! Log output: tracing to stderr, as text or JSON lines.
//!
//! Many logged values come from requests (a review's uid, namespace, name, kind, annotations,
//! error messages quoting them). In JSON every value is a JSON string, escaped by the encoder. In
//! text, [`escaped_fields`] renders every field so that nothing a client sends can end the line,
//! start a forged one, or reach the terminal as an escape sequence: control characters (newline,
//! carriage return, ESC and the other C0/C1 codes, DEL) are written as Rust escapes (`\n`,
//! `\u{1b}`), and a value that is not a single plain token is quoted, so that `a level=ERROR` stays
//! inside its field.
//!
//! [`review`] writes the one line of each answered review. Its fields are written without an
//! allocation per field (each value is rendered into a per-thread scratch string, the message
//! escaped as it is written): `cargo bench -p kube-harden-bench --bench engine -- log_line`,
//! the line of a Pod CREATE to a sink, the former field writer and this one in one process
//! (2026-11-30 17:29 UTC): text 1.02 -> 0.74 µs.

use std::fmt::Write as _;
use std::time::Duration;

use tracing_subscriber::fmt::format::{FieldFn, Writer};

use crate::admission::{Mode, Report};
use crate::config::LogFormat;
use crate::error::{Error, Result};
use crate::harden::{Change, applied_names};

/// Installs the process-wide subscriber (a second call, only possible in tests, keeps the first).
pub fn init(format: LogFormat, filter: &str) -> Result<()> {
    use tracing_subscriber::util::SubscriberInitExt as _;
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = subscriber(format, filter, std::io::stderr, ansi)?.try_init();
    Ok(())
}

/// The subscriber that writes `format` lines passing `filter` to `writer` (the binary's stderr; a
/// sink in the benchmark of the review line), with ANSI colours when `ansi`.
pub fn subscriber<W>(
    format: LogFormat,
    filter: &str,
    writer: W,
    ansi: bool,
) -> Result<Box<dyn tracing::Subscriber + Send + Sync>>
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .map_err(|e| Error::Config(format!("--log-level {filter:?}: {e}")))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(ansi);
    Ok(match format {
        LogFormat::Text => Box::new(builder.fmt_fields(escaped_fields()).finish()),
        LogFormat::Json => Box::new(builder.json().flatten_event(true).finish()),
    })
}

/// Logs the line of one answered review: who asked what, what it changed, how long it took.
pub fn review(mode: Mode, report: &Report, elapsed: Duration) {
    tracing::info!(
        uid = %report.uid,
        mode = mode.as_str(),
        operation = report.operation,
        kind = report.kind,
        namespace = %report.namespace,
        name = %report.name,
        dry_run = report.dry_run,
        outcome = report.outcome.as_str(),
        changes = %Applied(&report.changes),
        duration_us = elapsed.as_micros() as u64,
        error = report.error.as_ref().map(|(_, message)| message.as_str()),
        "admission review"
    );
}

/// The names of the applied changes, each once, in [`crate::harden::ChangeName`]'s order,
/// comma-separated.
struct Applied<'a>(&'a [Change]);

impl std::fmt::Display for Applied<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, name) in applied_names(self.0).iter().enumerate() {
            if i > 0 {
                f.write_char(',')?;
            }
            f.write_str(name.as_str())?;
        }
        Ok(())
    }
}

/// The field formatter of text logs: `name=value` pairs separated by spaces, the message first
/// and bare, every value written by `write_value` (the message escaped by `EscapeControls`).
pub fn escaped_fields()
-> tracing_subscriber::field::delimited::Delimited<&'static str, FieldFn<FieldWriter>> {
    use tracing_subscriber::field::MakeExt as _;
    tracing_subscriber::fmt::format::debug_fn(write_field as FieldWriter).delimited(" ")
}

/// The signature of [`escaped_fields`]' field writer.
pub type FieldWriter =
    fn(&mut Writer<'_>, &tracing::field::Field, &dyn std::fmt::Debug) -> std::fmt::Result;

fn write_field(
    writer: &mut Writer<'_>,
    field: &tracing::field::Field,
    value: &dyn std::fmt::Debug,
) -> std::fmt::Result {
    if field.name() == "message" {
        return write!(EscapeControls(writer), "{value:?}");
    }
    writer.write_str(field.name())?;
    writer.write_char('=')?;
    // The value is rendered once into this thread's scratch string (no allocation per field once
    // it has grown), then written as it is or quoted.
    let written = SCRATCH.with(|scratch| {
        let mut rendered = scratch.try_borrow_mut().ok()?;
        rendered.clear();
        let result = write!(rendered, "{value:?}").and_then(|()| write_value(writer, &rendered));
        if rendered.capacity() > SCRATCH_KEPT_BYTES {
            *rendered = String::new();
        }
        Some(result)
    });
    // Only when a value's `Debug` logs a field itself (the scratch string is in use).
    written.unwrap_or_else(|| write_value(writer, &format!("{value:?}")))
}

thread_local! {
    /// Where [`write_field`] renders a value before it decides how to write it.
    static SCRATCH: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// The scratch string is dropped after a value longer than this (an error quoting a request),
/// so a thread keeps no more than this between lines.
const SCRATCH_KEPT_BYTES: usize = 4096;

/// Writes a rendered field value: a plain token as is, a string already quoted by `Debug`
/// (string fields) as is, anything else (a `%`-formatted value with spaces, quotes, `=` or control
/// characters) quoted with Rust's string escapes.
fn write_value(writer: &mut impl std::fmt::Write, rendered: &str) -> std::fmt::Result {
    if is_plain(rendered) || is_quoted(rendered) {
        writer.write_str(rendered)
    } else {
        write!(writer, "{rendered:?}")
    }
}

/// A writer that passes text on with its control characters as Rust escapes.
struct EscapeControls<'w, W: std::fmt::Write>(&'w mut W);

impl<W: std::fmt::Write> std::fmt::Write for EscapeControls<'_, W> {
    fn write_str(&mut self, text: &str) -> std::fmt::Result {
        let mut rest = text;
        while let Some((at, control)) = rest.char_indices().find(|(_, c)| c.is_control()) {
            self.0.write_str(&rest[..at])?;
            write!(self.0, "{}", control.escape_debug())?;
            rest = &rest[at + control.len_utf8()..];
        }
        self.0.write_str(rest)
    }
}

fn is_plain(text: &str) -> bool {
    !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_alphanumeric() || "-_./:,@+()[]{}<>*#%&!?;~^|'".contains(c))
}

/// `"..."` whose inner quotes are all escaped and which holds no control character: the output of
/// `str`'s `Debug`.
fn is_quoted(text: &str) -> bool {
    fn check(text: &str) -> Option<()> {
        let inner = text.strip_prefix('"')?.strip_suffix('"')?;
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            match c {
                // An escape: the next character is taken as is (a final lone `\` fails).
                '\\' => {
                    chars.next()?;
                }
                '"' => return None,
                c if c.is_control() => return None,
                _ => {}
            }
        }
        Some(())
    }
    check(text).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A field value as [`write_field`] writes it.
    fn render_value(rendered: &str) -> String {
        let mut written = String::new();
        write_value(&mut written, rendered).unwrap();
        written
    }

    /// A message as [`write_field`] writes it.
    fn escape_controls(text: &str) -> String {
        let mut escaped = String::new();
        EscapeControls(&mut escaped).write_str(text).unwrap();
        escaped
    }

    #[test]
    fn values_cannot_break_out_of_their_field() {
        assert_eq!(render_value("Pod"), "Pod");
        assert_eq!(render_value("team-a/web-1"), "team-a/web-1");
        assert_eq!(render_value(r#""Pod""#), r#""Pod""#);
        assert_eq!(render_value(r#""a \"b\"""#), r#""a \"b\"""#);
        assert_eq!(
            render_value("a\nlevel=ERROR msg=\"forged\""),
            r#""a\nlevel=ERROR msg=\"forged\"""#
        );
        assert_eq!(render_value("x\u{1b}[31mred"), r#""x\u{1b}[31mred""#);
        assert_eq!(render_value("a level=ERROR"), r#""a level=ERROR""#);
        // Looks quoted, but a bare quote inside would end the field early.
        assert_eq!(render_value(r#""a" b="c""#), r#""\"a\" b=\"c\"""#);
        assert_eq!(render_value(""), r#""""#);
        assert_eq!(render_value("\"\u{7}\""), r#""\"\u{7}\"""#);
    }

    #[test]
    fn messages_keep_their_text_without_control_characters() {
        assert_eq!(escape_controls("admission review"), "admission review");
        assert_eq!(
            escape_controls("bad\r\nlevel=ERROR \u{1b}]0;x\u{7} \u{9b}"),
            r"bad\r\nlevel=ERROR \u{1b}]0;x\u{7} \u{9b}"
        );
    }

    /// Collects what a subscriber writes.
    #[derive(Clone, Default)]
    struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_review_is_one_line_of_escaped_fields() {
        use crate::admission::RequestOutcome;
        use crate::harden::{ChangeName, Outcome, SkipReason};
        let change = |name, outcome| Change {
            name,
            container: Some("app".into()),
            outcome,
            detail: None,
        };
        let report = Report {
            uid: "a\nlevel=ERROR msg=\"forged\"".into(),
            operation: "CREATE",
            kind: "Pod",
            namespace: "team-a".into(),
            name: "x\u{1b}[31mred".into(),
            dry_run: false,
            outcome: RequestOutcome::Patched,
            changes: vec![
                change(ChangeName::RunAsUser, Outcome::Applied),
                change(ChangeName::RunAsNonRoot, Outcome::Applied),
                change(ChangeName::RunAsUser, Outcome::Applied),
                change(
                    ChangeName::RunAsGroup,
                    Outcome::Skipped(SkipReason::ExplicitValue),
                ),
            ],
            error: None,
            findings: Vec::new(),
            restricted: None,
        };
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .without_time()
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .fmt_fields(escaped_fields())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            review(Mode::Enforce, &report, Duration::from_micros(42));
        });
        let line = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        assert_eq!(
            line,
            concat!(
                " INFO kube_harden::logging: admission review ",
                r#"uid="a\nlevel=ERROR msg=\"forged\"" mode="enforce" operation="CREATE" "#,
                r#"kind="Pod" namespace=team-a name="x\u{1b}[31mred" dry_run=false "#,
                r#"outcome="patched" changes=runAsNonRoot,runAsUser duration_us=42"#,
                "\n"
            )
        );
    }
}
