//! What a scalar means: go-yaml v2's `resolve()` (the YAML 1.1 rules Kubernetes applies through
//! sigs.k8s.io/yaml), ported rule for rule.
//!
//! The YAML parser (granit-parser) gives each scalar's text, style and tag; this decides whether
//! it is a null, a boolean, an integer, a float or a string, as go-yaml v2 decides it:
//!
//! - null: empty, `~`, `null`, `Null`, `NULL`;
//! - booleans: `y Y yes Yes YES on On ON true True TRUE` and `n N no No NO off Off OFF false
//!   False FALSE` (no other case mix: `yES` is a string);
//! - integers: Go's `strconv.ParseInt(s, 0, 64)` after removing every `_`: decimal, `0x1F`,
//!   `0o17`, `0b101`, a leading `0` for octal (`0755` is 493), with a sign; above `i64`, `u64`;
//! - floats: `.inf`, `-.inf`, `.nan` (and their `Inf`/`INF` spellings), a leading `.` (`.5`),
//!   and `[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?` (so `08` is the float 8);
//!   a float that overflows is a string;
//! - timestamps (`2001-12-14`, `2001-12-14T21:59:43.10-05:00`) stay strings, as
//!   sigs.k8s.io/yaml keeps them (also under `!!timestamp`); sexagesimal `1:20` is a string
//!   (go-yaml has no base 60);
//! - quoted and block scalars are strings unless tagged; `!!str`, `!!int`, `!!float`, `!!bool`
//!   force a type (a mismatch is an error, `!!float 1` is 1.0); `!!binary` is base64-decoded;
//!   any other tag leaves the text a string.

use base64::Engine as _;

/// A resolved scalar.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Scalar {
    Null,
    Bool(bool),
    Int(i64),
    Uint(u64),
    Float(f64),
    Str(String),
}

const CORE: &str = "tag:yaml.org,2002:";

/// The scalar `text`, written in plain style or not, with its tag (the full tag URI, e.g.
/// `tag:yaml.org,2002:int`, or a local tag such as `!foo`), as go-yaml v2 decodes it into an
/// `interface{}`.
pub(crate) fn resolve(text: &str, plain: bool, tag: Option<&str>) -> Result<Scalar, String> {
    let tag = tag
        .map(|t| t.strip_prefix(CORE).map_or(t, |s| s))
        .unwrap_or("");
    // go-yaml: a quoted or block scalar without a tag is a string.
    if tag.is_empty() && !plain {
        return Ok(Scalar::Str(text.to_owned()));
    }
    match tag {
        "" | "str" | "bool" | "int" | "float" => {}
        "binary" => return binary(text),
        // A timestamp is kept as its text, tagged or not (see below).
        "timestamp" => return Ok(Scalar::Str(text.to_owned())),
        // Unresolvable tags (`!!null`, `!!map` on a scalar, `!local`, `!`): the text.
        _ => return Ok(Scalar::Str(text.to_owned())),
    }
    let (kind, value) = if tag == "str" {
        ("str", Scalar::Str(text.to_owned()))
    } else {
        implicit(text)
    };
    match (tag, kind) {
        ("", _) => Ok(value),
        (t, k) if t == k => Ok(value),
        ("float", "int") => Ok(Scalar::Float(match value {
            Scalar::Int(i) => i as f64,
            Scalar::Uint(u) => u as f64,
            other => return Ok(other),
        })),
        (t, k) => Err(format!("cannot decode !!{k} `{text}` as a !!{t}")),
    }
}

/// go-yaml's implicit resolution of a plain scalar: (its tag name, its value).
///
/// go-yaml also recognises timestamps (`2001-12-14`, `2001-12-14T21:59:43.10-05:00`) here, but
/// decoding into an `interface{}` (what sigs.k8s.io/yaml does) puts the timestamp's text back,
/// and no timestamp spelling is also an integer or float: they fall through to strings.
fn implicit(text: &str) -> (&'static str, Scalar) {
    let string = || ("str", Scalar::Str(text.to_owned()));
    match text {
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            return ("bool", Scalar::Bool(true));
        }
        "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            return ("bool", Scalar::Bool(false));
        }
        "" | "~" | "null" | "Null" | "NULL" => return ("null", Scalar::Null),
        ".nan" | ".NaN" | ".NAN" => return ("float", Scalar::Float(f64::NAN)),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return ("float", Scalar::Float(f64::INFINITY));
        }
        "-.inf" | "-.Inf" | "-.INF" => return ("float", Scalar::Float(f64::NEG_INFINITY)),
        _ => {}
    }
    match text.as_bytes().first().copied().unwrap_or_default() {
        b'.' => match go_parse_float(text) {
            Some(f) => ("float", Scalar::Float(f)),
            None => string(),
        },
        b'0'..=b'9' | b'+' | b'-' => {
            let plain = text.replace('_', "");
            if let Some(i) = go_parse_int(&plain) {
                return ("int", Scalar::Int(i));
            }
            if let Some(u) = go_parse_uint(&plain) {
                return ("int", Scalar::Uint(u));
            }
            if is_yaml_style_float(&plain)
                && let Some(f) = go_parse_float(&plain)
            {
                return ("float", Scalar::Float(f));
            }
            let binary = if let Some(digits) = plain.strip_prefix("0b") {
                Some(digits.to_owned())
            } else {
                plain.strip_prefix("-0b").map(|digits| format!("-{digits}"))
            };
            if let Some(digits) = binary {
                if let Some(i) = parse_radix_i64(&digits, 2) {
                    return ("int", Scalar::Int(i));
                }
                if let Some(u) = digits
                    .strip_prefix('+')
                    .map_or(Some(digits.as_str()), |_| None)
                    .and_then(|d| parse_digits(d, 2))
                {
                    return ("int", Scalar::Uint(u));
                }
            }
            string()
        }
        // `y`, `n`, `t`, `f`, `o`, `~` starts were looked up above; anything else is a string.
        _ => string(),
    }
}

fn binary(text: &str) -> Result<Scalar, String> {
    let compact: String = text.chars().filter(|c| *c != '\n' && *c != '\r').collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(compact)
        .map_err(|_| "!!binary value contains invalid base64 data".to_owned())?;
    Ok(Scalar::Str(String::from_utf8_lossy(&bytes).into_owned()))
}

/// Unsigned digits of `radix` (at least one, nothing else).
fn parse_digits(digits: &str, radix: u32) -> Option<u64> {
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    u64::from_str_radix(digits, radix).ok()
}

/// A signed number of `radix` as Go's `strconv.ParseInt(s, radix, 64)` reads it.
fn parse_radix_i64(s: &str, radix: u32) -> Option<i64> {
    let (negative, digits) = split_sign(s);
    signed(negative, parse_digits(digits, radix)?)
}

/// `magnitude` with its sign, if it fits an `i64`.
fn signed(negative: bool, magnitude: u64) -> Option<i64> {
    if negative {
        0i64.checked_sub_unsigned(magnitude)
    } else {
        i64::try_from(magnitude).ok()
    }
}

fn split_sign(s: &str) -> (bool, &str) {
    match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    }
}

/// The base and digits of an unsigned number as Go's base-0 parsing reads it.
fn base_and_digits(s: &str) -> (u32, &str) {
    let b = s.as_bytes();
    match b {
        [b'0', b'x' | b'X', ..] => (16, &s[2..]),
        [b'0', b'o' | b'O', ..] => (8, &s[2..]),
        [b'0', b'b' | b'B', ..] => (2, &s[2..]),
        [b'0', _, ..] => (8, &s[1..]),
        _ => (10, s),
    }
}

/// Go's `strconv.ParseInt(s, 0, 64)` (underscores already removed).
fn go_parse_int(s: &str) -> Option<i64> {
    let (negative, unsigned) = split_sign(s);
    let (radix, digits) = base_and_digits(unsigned);
    signed(negative, parse_digits(digits, radix)?)
}

/// Go's `strconv.ParseUint(s, 0, 64)`: no sign.
fn go_parse_uint(s: &str) -> Option<u64> {
    if s.starts_with(['+', '-']) {
        return None;
    }
    let (radix, digits) = base_and_digits(s);
    parse_digits(digits, radix)
}

/// go-yaml's `yamlStyleFloat`: `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`.
fn is_yaml_style_float(s: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let s = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (mantissa, exponent) = match s.split_once(['e', 'E']) {
        Some((m, e)) => (m, Some(e)),
        None => (s, None),
    };
    let mantissa_ok = match mantissa.split_once('.') {
        Some(("", fraction)) => digits(fraction),
        Some((whole, fraction)) => digits(whole) && fraction.bytes().all(|b| b.is_ascii_digit()),
        None => digits(mantissa),
    };
    mantissa_ok && exponent.is_none_or(|e| digits(e.strip_prefix(['+', '-']).unwrap_or(e)))
}

/// Go's `strconv.ParseFloat(s, 64)` for the spellings go-yaml passes it (a leading `.`, or a
/// `yamlStyleFloat` match); an overflow (`1e999`) is an error, as in Go, so the text stays a
/// string.
fn go_parse_float(s: &str) -> Option<f64> {
    if !is_yaml_style_float(s) {
        return None;
    }
    s.parse::<f64>().ok().filter(|f| f.is_finite())
}
