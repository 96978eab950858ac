//! From the parser's events to JSON, as sigs.k8s.io/yaml does it over go-yaml v2.
//!
//! [`compose`] builds the node graph of one YAML document from granit-parser's events (anchors
//! point at their nodes, aliases at their anchors). [`to_json`] then walks it as go-yaml v2's
//! decoder and sigs.k8s.io/yaml's `convertToJSONableObject` do:
//!
//! - scalars are resolved by [`super::resolve`];
//! - a merge key (`<<` written plain, or tagged `!!merge`) takes a mapping, an alias of one, or
//!   a sequence of them; its entries are set **where the `<<` stands**, overwriting keys written
//!   before it, and later keys overwrite merged ones (go-yaml v2's order; in a sequence, earlier
//!   mappings win). A duplicate key overwrites the earlier value (go-yaml v2 is not strict here);
//! - mapping keys become JSON strings: integers in decimal, booleans as `true`/`false`, floats
//!   as Go's `FormatFloat(f, 'g', -1, 32)`; a null, sequence or mapping key is an error;
//! - NaN and infinities cannot be JSON: an error, as `json.Marshal` refuses them;
//! - an integral float (`1e3`, `1.0`) is the integer `json.Marshal` prints (`1000`, `1`).
//!
//! Every value's position (the line and column of its key, or of a sequence item) is recorded
//! under its JSON pointer, for error messages about fields.
#![allow(
    clippy::indexing_slicing,
    reason = "node ids index the graph `compose` built: every id is one it pushed"
)]

use std::collections::HashMap;

use granit_parser::{Event, Parser, ScalarStyle, Span};
use serde_json::{Map, Number, Value};

use super::resolve::{Scalar, resolve};
use super::{Mark, Positions, YamlError};

type NodeId = usize;

#[derive(Debug)]
enum Kind {
    Scalar {
        text: String,
        plain: bool,
        tag: Option<String>,
    },
    Sequence(Vec<NodeId>),
    Mapping(Vec<(NodeId, NodeId)>),
    Alias(NodeId),
}

#[derive(Debug)]
struct Node {
    kind: Kind,
    mark: Mark,
}

/// One document's nodes; the root is the first.
#[derive(Debug, Default)]
pub(crate) struct Graph {
    nodes: Vec<Node>,
    /// Events read, the measure of the input for the alias expansion limit.
    events: usize,
}

impl Graph {
    /// Where the document's content starts.
    pub(crate) fn start(&self) -> Mark {
        self.nodes.first().map(|n| n.mark).unwrap_or_default()
    }
}

fn mark(span: &Span) -> Mark {
    Mark {
        line: span.start.line(),
        column: span.start.col() + 1,
    }
}

fn scan_error(e: &granit_parser::ScanError) -> YamlError {
    YamlError {
        mark: Mark {
            line: e.marker().line(),
            column: e.marker().col() + 1,
        },
        message: e.info(),
    }
}

/// The documents of `text` (one `---` section of a stream), each as its node graph; an empty
/// section has none.
pub(crate) fn compose(text: &str) -> Result<Vec<Graph>, YamlError> {
    let mut parser = Parser::new_from_str(text);
    let mut documents = Vec::new();
    let mut graph = Graph::default();
    // Open collections: (node, a key waiting for its value, in a mapping).
    let mut open: Vec<(NodeId, Option<NodeId>)> = Vec::new();
    let mut anchors: HashMap<usize, NodeId> = HashMap::new();
    for event in &mut parser {
        let (event, span) = event.map_err(|e| scan_error(&e))?;
        graph.events += 1;
        let (kind, anchor, opens) = match event {
            Event::DocumentStart(..) => {
                graph = Graph::default();
                anchors.clear();
                continue;
            }
            Event::DocumentEnd => {
                if !graph.nodes.is_empty() {
                    documents.push(std::mem::take(&mut graph));
                }
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => {
                open.pop();
                continue;
            }
            Event::Scalar(text, style, anchor, tag) => (
                Kind::Scalar {
                    text: text.into_owned(),
                    plain: style == ScalarStyle::Plain,
                    tag: tag.map(|t| format!("{}{}", t.handle(), t.suffix())),
                },
                anchor,
                false,
            ),
            Event::SequenceStart(_, anchor, _) => (Kind::Sequence(Vec::new()), anchor, true),
            Event::MappingStart(_, anchor, _) => (Kind::Mapping(Vec::new()), anchor, true),
            Event::Alias(id) => match anchors.get(&id) {
                Some(&target) => (Kind::Alias(target), 0, false),
                None => {
                    return Err(YamlError {
                        mark: mark(&span),
                        message: "unknown anchor referenced".into(),
                    });
                }
            },
            _ => continue,
        };
        let id = graph.nodes.len();
        graph.nodes.push(Node {
            kind,
            mark: mark(&span),
        });
        if anchor != 0 {
            anchors.insert(anchor, id);
        }
        if let Some((parent, pending_key)) = open.last_mut() {
            match &mut graph.nodes[*parent].kind {
                Kind::Sequence(items) => items.push(id),
                Kind::Mapping(entries) => match pending_key.take() {
                    None => *pending_key = Some(id),
                    Some(key) => entries.push((key, id)),
                },
                _ => unreachable!("only collections are open"),
            }
        }
        if opens {
            open.push((id, None));
        }
    }
    Ok(documents)
}

/// Converts a document to JSON with the positions of its values.
pub(crate) fn to_json(graph: &Graph) -> Result<(Value, Positions), YamlError> {
    let mut converter = Converter {
        graph,
        positions: Positions::default(),
        in_progress: Vec::new(),
        // Aliases may repeat nodes, but not without bound (a "billion laughs" document).
        budget: graph.events.saturating_mul(100).max(100_000),
    };
    let mut pointer = String::new();
    let value = converter.value(0, &mut pointer)?;
    Ok((value, converter.positions))
}

struct Converter<'a> {
    graph: &'a Graph,
    positions: Positions,
    /// Nodes being converted (an alias to one of them is a cycle).
    in_progress: Vec<NodeId>,
    budget: usize,
}

impl Converter<'_> {
    fn error(&self, id: NodeId, message: impl Into<String>) -> YamlError {
        YamlError {
            mark: self.graph.nodes[id].mark,
            message: message.into(),
        }
    }

    /// go-yaml v2's error for a merge of something else than mappings.
    fn want_map(&self, id: NodeId) -> YamlError {
        self.error(
            id,
            "map merge requires map or sequence of maps as the value",
        )
    }

    fn value(&mut self, id: NodeId, pointer: &mut String) -> Result<Value, YamlError> {
        self.budget = self.budget.checked_sub(1).ok_or_else(|| {
            self.error(
                id,
                "aliases expand this document beyond 100 values per input event",
            )
        })?;
        let node = &self.graph.nodes[id];
        match &node.kind {
            Kind::Alias(target) => {
                if self.in_progress.contains(target) {
                    return Err(self.error(id, "anchor's value contains itself"));
                }
                self.value(*target, pointer)
            }
            Kind::Scalar { text, plain, tag } => {
                let scalar =
                    resolve(text, *plain, tag.as_deref()).map_err(|m| self.error(id, m))?;
                scalar_json(scalar).map_err(|m| self.error(id, m))
            }
            Kind::Sequence(items) => {
                self.in_progress.push(id);
                let mut out = Vec::with_capacity(items.len());
                for (i, &item) in items.iter().enumerate() {
                    let len = pointer.len();
                    pointer.push('/');
                    pointer.push_str(&i.to_string());
                    self.positions
                        .insert(pointer.clone(), self.graph.nodes[item].mark);
                    out.push(self.value(item, pointer)?);
                    pointer.truncate(len);
                }
                self.in_progress.pop();
                Ok(Value::Array(out))
            }
            Kind::Mapping(_) => {
                let mut map = Map::new();
                self.merge_into(id, &mut map, pointer)?;
                Ok(Value::Object(map))
            }
        }
    }

    /// Sets the entries of mapping `id` (following aliases) into `map`, in order, merges
    /// included: go-yaml v2's `mapping()` decoding into an existing map.
    fn merge_into(
        &mut self,
        id: NodeId,
        map: &mut Map<String, Value>,
        pointer: &mut String,
    ) -> Result<(), YamlError> {
        let id = self.follow(id);
        let Kind::Mapping(entries) = &self.graph.nodes[id].kind else {
            return Err(self.want_map(id));
        };
        if self.in_progress.contains(&id) {
            return Err(self.error(id, "anchor's value contains itself"));
        }
        self.in_progress.push(id);
        for &(key, value) in entries {
            if self.is_merge_key(key) {
                self.merge(value, map, pointer)?;
                continue;
            }
            let name = self.key(key)?;
            let len = pointer.len();
            pointer.push('/');
            pointer.push_str(&name.replace('~', "~0").replace('/', "~1"));
            self.positions
                .insert(pointer.clone(), self.graph.nodes[key].mark);
            let v = self.value(value, pointer)?;
            pointer.truncate(len);
            map.insert(name, v);
        }
        self.in_progress.pop();
        Ok(())
    }

    /// go-yaml v2's `merge()`: a mapping (or alias of one), or a sequence of them applied from
    /// the last to the first so that earlier ones win.
    fn merge(
        &mut self,
        value: NodeId,
        map: &mut Map<String, Value>,
        pointer: &mut String,
    ) -> Result<(), YamlError> {
        let target = self.follow(value);
        match &self.graph.nodes[target].kind {
            Kind::Sequence(items) if !matches!(self.graph.nodes[value].kind, Kind::Alias(_)) => {
                for &item in items.iter().rev() {
                    if !matches!(self.graph.nodes[self.follow(item)].kind, Kind::Mapping(_)) {
                        return Err(self.want_map(item));
                    }
                    self.merge_into(item, map, pointer)?;
                }
                Ok(())
            }
            _ => self.merge_into(value, map, pointer),
        }
    }

    fn follow(&self, mut id: NodeId) -> NodeId {
        while let Kind::Alias(target) = self.graph.nodes[id].kind {
            id = target;
        }
        id
    }

    fn is_merge_key(&self, id: NodeId) -> bool {
        matches!(&self.graph.nodes[id].kind, Kind::Scalar { text, plain, tag }
        if text == "<<" && match tag.as_deref() {
            None => *plain,
            Some(t) => t == "tag:yaml.org,2002:merge",
        })
    }

    /// A mapping key as sigs.k8s.io/yaml turns it into a JSON object key.
    fn key(&mut self, id: NodeId) -> Result<String, YamlError> {
        let target = self.follow(id);
        let Kind::Scalar { text, plain, tag } = &self.graph.nodes[target].kind else {
            return Err(self.error(id, "a mapping or sequence cannot be a key in JSON"));
        };
        let scalar = resolve(text, *plain, tag.as_deref()).map_err(|m| self.error(id, m))?;
        Ok(match scalar {
            Scalar::Str(s) => s,
            Scalar::Int(i) => i.to_string(),
            Scalar::Bool(b) => b.to_string(),
            Scalar::Float(f) => go_format_float32(f),
            Scalar::Uint(u) => {
                return Err(self.error(id, format!("unsupported map key of type uint64: {u}")));
            }
            Scalar::Null => return Err(self.error(id, "a null key cannot be a key in JSON")),
        })
    }
}

/// A scalar as `json.Marshal` writes it.
fn scalar_json(scalar: Scalar) -> Result<Value, String> {
    Ok(match scalar {
        Scalar::Null => Value::Null,
        Scalar::Bool(b) => Value::Bool(b),
        Scalar::Int(i) => Value::from(i),
        Scalar::Uint(u) => Value::from(u),
        Scalar::Str(s) => Value::String(s),
        Scalar::Float(f) if !f.is_finite() => {
            return Err(format!(
                "json: unsupported value: {f} (JSON has no NaN or infinity)"
            ));
        }
        // json.Marshal prints an integral float without a fraction: read back, an integer.
        Scalar::Float(f) if f.fract() == 0.0 && f.abs() < 9.2e18 => Value::from(f as i64),
        Scalar::Float(f) => Number::from_f64(f).map_or(Value::Null, Value::Number),
    })
}

/// Go's `strconv.FormatFloat(f, 'g', -1, 32)` with go-yaml's names for the non-finite values.
fn go_format_float32(f: f64) -> String {
    if f.is_nan() {
        return ".nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { ".inf" } else { "-.inf" }.into();
    }
    let f = f as f32;
    // Shortest digits and decimal exponent from Rust's `{:e}` ("1.5e3").
    let sci = format!("{:e}", f.abs());
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let sign = if f.is_sign_negative() { "-" } else { "" };
    // Go: shortest formatting decides with precision 6.
    if !(-4..6).contains(&exponent) {
        let (first, rest) = digits.split_at(1);
        let dot = if rest.is_empty() { "" } else { "." };
        let esign = if exponent < 0 { '-' } else { '+' };
        return format!("{sign}{first}{dot}{rest}e{esign}{:02}", exponent.abs());
    }
    let plain = if exponent >= 0 {
        let whole = exponent as usize + 1;
        if digits.len() <= whole {
            format!("{digits}{}", "0".repeat(whole - digits.len()))
        } else {
            format!("{}.{}", &digits[..whole], &digits[whole..])
        }
    } else {
        format!("0.{}{digits}", "0".repeat((-exponent - 1) as usize))
    };
    format!("{sign}{plain}")
}

#[cfg(test)]
mod tests {
    use super::go_format_float32;

    #[test]
    fn float_keys_format_as_go_does() {
        for (f, go) in [
            (1000.0, "1000"),
            (1.5, "1.5"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1e6, "1e+06"),
            (123456.0, "123456"),
            (-2.5, "-2.5"),
            (0.1, "0.1"),
        ] {
            assert_eq!(go_format_float32(f), go, "{f}");
        }
    }
}
