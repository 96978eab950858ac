//! Log output: tracing to stderr, as text or JSON lines.
//!
//! Many logged values come from requests (a review's uid, namespace, name, kind, annotations,
//! error messages quoting them). In JSON every value is a JSON string, escaped by the encoder. In
//! text, [`escaped_fields`] renders every field so that nothing a client sends can end the line,
//! start a forged one, or reach the terminal as an escape sequence: control characters (newline,
//! carriage return, ESC and the other C0/C1 codes, DEL) are written as Rust escapes (`\n`,
//! `\u{1b}`), and a value that is not a single plain token is quoted, so that `a level=ERROR` stays
//! inside its field.

use tracing_subscriber::fmt::format::{FieldFn, Writer};

use crate::config::LogFormat;
use crate::error::{Error, Result};

/// Installs the process-wide subscriber (a second call, only possible in tests, keeps the first).
pub fn init(format: LogFormat, filter: &str) -> Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .map_err(|e| Error::Config(format!("--log-level {filter:?}: {e}")))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let _ = match format {
        LogFormat::Text => builder.fmt_fields(escaped_fields()).try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    Ok(())
}

/// The field formatter of text logs: `name=value` pairs separated by spaces, the message first
/// and bare, every value escaped by [`render_value`] (the message by [`escape_controls`]).
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
    let rendered = format!("{value:?}");
    if field.name() == "message" {
        writer.write_str(&escape_controls(&rendered))
    } else {
        write!(writer, "{}={}", field.name(), render_value(&rendered))
    }
}

/// Control characters as Rust escapes; everything else unchanged.
pub fn escape_controls(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_owned();
    }
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_debug().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// A field value as it is written: a plain token as is, a string already quoted by `Debug`
/// (string fields) as is, anything else (a `%`-formatted value with spaces, quotes, `=` or control
/// characters) quoted with Rust's string escapes.
pub fn render_value(rendered: &str) -> String {
    if is_plain(rendered) || is_quoted(rendered) {
        rendered.to_owned()
    } else {
        format!("{rendered:?}")
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
}
