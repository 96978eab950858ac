//! Tests of the YAML module: Kubernetes' YAML 1.1 reading, and writing that reads back the same.
//! The expected values are what tests/yaml-oracle (Kubernetes' own code) prints for the same
//! input; tests/it/yaml_oracle.rs checks whole files against it.

use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;

fn read(yaml: &str) -> Value {
    let mut documents = read_stream(yaml);
    assert_eq!(documents.len(), 1, "{yaml}");
    documents.remove(0).expect("reads").value
}

fn read_error(yaml: &str) -> YamlError {
    let mut documents = read_stream(yaml);
    assert_eq!(documents.len(), 1, "{yaml}");
    documents.remove(0).expect_err("refused").error
}

#[test]
fn scalars_resolve_as_go_yaml_v2_resolves_them() {
    let cases: &[(&str, Value)] = &[
        ("0755", json!(493)),
        ("012", json!(10)),
        ("08", json!(8)),
        ("0o17", json!(15)),
        ("0O17", json!(15)),
        ("0x1F", json!(31)),
        ("0X1f", json!(31)),
        ("-0x1F", json!(-31)),
        ("0b101", json!(5)),
        ("+0b101", json!(5)),
        ("-0b11", json!(-3)),
        ("1_000", json!(1000)),
        ("1__0", json!(10)),
        ("_1", json!("_1")),
        ("1e3", json!(1000)),
        ("1.0", json!(1)),
        ("3.25", json!(3.25)),
        (".5", json!(0.5)),
        ("+.5", json!(0.5)),
        ("1.", json!(1)),
        ("1e999", json!("1e999")),
        ("1:20", json!("1:20")),
        ("9223372036854775807", json!(i64::MAX)),
        ("-9223372036854775808", json!(i64::MIN)),
        ("18446744073709551615", json!(u64::MAX)),
        ("yes", json!(true)),
        ("Yes", json!(true)),
        ("YES", json!(true)),
        ("y", json!(true)),
        ("Y", json!(true)),
        ("on", json!(true)),
        ("ON", json!(true)),
        ("True", json!(true)),
        ("no", json!(false)),
        ("N", json!(false)),
        ("Off", json!(false)),
        ("FALSE", json!(false)),
        ("yES", json!("yES")),
        ("oN", json!("oN")),
        ("~", json!(null)),
        ("null", json!(null)),
        ("Null", json!(null)),
        ("NULL", json!(null)),
        ("nULL", json!("nULL")),
        ("2001-12-14", json!("2001-12-14")),
        (
            "2001-12-14t21:59:43.10-05:00",
            json!("2001-12-14t21:59:43.10-05:00"),
        ),
        ("'0755'", json!("0755")),
        ("\"yes\"", json!("yes")),
        ("!!str 0755", json!("0755")),
        ("!!int '0755'", json!(493)),
        ("!!float 1", json!(1)),
        ("!!float '2.5'", json!(2.5)),
        ("!!bool 'off'", json!(false)),
        ("!!binary aGVsbG8=", json!("hello")),
        ("!!timestamp 2001-12-14", json!("2001-12-14")),
        ("!custom 12", json!("12")),
        ("|\n  0755\n", json!("0755\n")),
    ];
    for (yaml, expected) in cases {
        let value = read(&format!("v: {yaml}\n"));
        assert_eq!(&value["v"], expected, "v: {yaml}");
    }
}

#[test]
fn what_json_cannot_hold_is_an_error_with_its_position() {
    for (yaml, message) in [
        ("a: 1\nb: .inf\n", "unsupported value"),
        ("a: 1\nb: -.Inf\n", "unsupported value"),
        ("a: 1\nb: .nan\n", "unsupported value"),
    ] {
        let error = read_error(yaml);
        assert_eq!(error.mark, Mark { line: 2, column: 4 }, "{yaml}: {error}");
        assert!(error.message.contains(message), "{yaml}: {error}");
    }
    for (yaml, message) in [
        (
            "a: 1\nb: !!int yes\n",
            "cannot decode !!bool `yes` as a !!int",
        ),
        ("a: 1\nb: !!binary '%%%'\n", "invalid base64"),
    ] {
        // The position of the value, after its tag.
        let error = read_error(yaml);
        assert_eq!(error.mark.line, 2, "{yaml}: {error}");
        assert!(error.message.contains(message), "{yaml}: {error}");
    }
    for (yaml, message) in [
        ("a: 1\n~: x\n", "null key"),
        ("a: 1\n[x]: y\n", "cannot be a key"),
        ("a: 1\n18446744073709551615: y\n", "uint64"),
    ] {
        let error = read_error(yaml);
        assert_eq!(error.mark.line, 2, "{yaml}: {error}");
        assert!(error.message.contains(message), "{yaml}: {error}");
    }
}

#[test]
fn keys_become_strings_as_sigs_k8s_io_yaml_makes_them() {
    let value = read("yes: a\n0755: b\n1e3: c\n1.5: d\n1e7: e\n-1: f\n\"no\": g\n");
    assert_eq!(
        value,
        json!({"true": "a", "493": "b", "1000": "c", "1.5": "d", "1e+07": "e", "-1": "f", "no": "g"})
    );
}

#[test]
fn merges_follow_go_yaml_v2_order() {
    let value = read(
        "base: &b {k: 1, m: 2}\nother: &o {m: 20, p: 30}\n\
         before: {k: 3, <<: *b}\nafter: {<<: *b, k: 3}\nlist: {<<: [*o, *b]}\n\
         inline: {<<: {x: 1}}\nquoted: {'<<': 1}\ntagged: {!!merge <<: *b}\n",
    );
    // A merge overwrites keys written before it; later keys overwrite merged ones; in a
    // list, earlier mappings win.
    assert_eq!(value["before"], json!({"k": 1, "m": 2}));
    assert_eq!(value["after"], json!({"k": 3, "m": 2}));
    assert_eq!(value["list"], json!({"m": 20, "k": 1, "p": 30}));
    assert_eq!(value["inline"], json!({"x": 1}));
    assert_eq!(value["quoted"], json!({"<<": 1}));
    assert_eq!(value["tagged"], json!({"k": 1, "m": 2}));
    for yaml in ["a: &s [1]\nb: {<<: *s}\n", "a: {<<: 5}\n", "a: {<<: [5]}\n"] {
        let error = read_error(yaml);
        assert!(
            error.message.contains("map merge requires"),
            "{yaml}: {error}"
        );
    }
}

#[test]
fn duplicate_keys_keep_the_last_value_at_the_first_place() {
    assert_eq!(read("a: 1\nb: 2\na: 3\n"), json!({"a": 3, "b": 2}));
}

#[test]
fn alias_cycles_and_bombs_are_refused() {
    let error = read_error("a: &a {b: *a}\n");
    assert!(error.message.contains("contains itself"), "{error}");
    let error = read_error("a: &a {<<: [*a]}\n");
    assert!(error.message.contains("contains itself"), "{error}");
    let mut bomb = String::from("l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..9 {
        let p = i - 1;
        bomb.push_str(&format!(
            "l{i}: &l{i} [*l{p}, *l{p}, *l{p}, *l{p}, *l{p}, *l{p}, *l{p}, *l{p}, *l{p}, *l{p}]\n"
        ));
    }
    let error = read_error(&bomb);
    assert!(error.message.contains("aliases expand"), "{error}");
}

#[test]
fn positions_are_those_of_each_field() {
    let documents =
        read_stream("# c\n---\na: 1\nspec:\n  containers:\n  - name: x\n    image: y\n");
    let document = documents[0].as_ref().unwrap();
    assert_eq!(document.line, 3);
    let at = |p: &str| document.positions.get(p).unwrap();
    assert_eq!(at("/spec"), Mark { line: 4, column: 1 });
    assert_eq!(at("/spec/containers/0"), Mark { line: 6, column: 5 });
    assert_eq!(at("/spec/containers/0/image"), Mark { line: 7, column: 5 });
}

#[test]
fn streams_split_on_separator_lines_as_kubectl_splits_them() {
    let input = "a: 1\n--- # comment\n\n---\n~\n---\nb: [\n---\nc: 3\n...\n---\nd: 4\n...\ne: 5\n";
    let documents = read_stream(input);
    let lines: Vec<Result<usize, Mark>> = documents
        .iter()
        .map(|d| d.as_ref().map(|d| d.line).map_err(|e| e.error.mark))
        .collect();
    // Empty and null documents are left out; a broken one does not hide the next.
    assert_eq!(lines.len(), 4, "{documents:?}");
    assert_eq!(lines[0], Ok(1));
    assert!(lines[1].is_err());
    assert_eq!(lines[2], Ok(9));
    assert_eq!(
        lines[3],
        Err(Mark {
            line: 14,
            column: 1
        }),
        "a second document after `...`"
    );
    let separator = read_stream("a: 1\n--- b: 2\n");
    assert_eq!(separator.len(), 2);
    let error = &separator[1].as_ref().unwrap_err().error;
    assert_eq!(error.mark.line, 2);
    assert!(
        error.message.contains("invalid document separator"),
        "{error}"
    );
}

#[test]
fn json_streams_are_read_as_json() {
    let documents = read_stream("{\"a\": 1}\n{\"b\": 2.5}\n");
    let values: Vec<Value> = documents.into_iter().map(|d| d.unwrap().value).collect();
    assert_eq!(values, [json!({"a": 1}), json!({"b": 2.5})]);
    // `{` that is not JSON is YAML's flow mapping, as kubectl falls back.
    assert_eq!(read("{a: yes}\n"), json!({"a": true}));
}

#[test]
fn typed_reading_names_the_field_and_its_position() {
    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Config {
        enabled: bool,
        items: Vec<u32>,
    }
    let config: Config = from_str("enabled: on\nitems: [0x10, 010]\n").unwrap();
    assert!(config.enabled);
    assert_eq!(config.items, [16, 8]);
    let error = from_str::<Config>("enabled: on\nitems:\n- 1\n- many\n").unwrap_err();
    assert_eq!(error.mark, Mark { line: 4, column: 3 }, "{error}");
    assert!(error.message.starts_with("items[1]: "), "{error}");
}

#[test]
fn written_strings_that_look_like_other_types_are_quoted() {
    let ambiguous = [
        "no",
        "yes",
        "Off",
        "ON",
        "y",
        "N",
        "~",
        "null",
        "NULL",
        "true",
        "False",
        "0755",
        "012",
        "1_000",
        "1:20",
        "0o17",
        "0b1",
        "0x1F",
        "1e3",
        ".inf",
        "-.Inf",
        ".nan",
        "2001-12-14",
        "<<",
        "",
        "+1",
        ".5",
        "3.",
        "---",
        "...",
    ];
    for s in ambiguous {
        let out = to_string(&json!({ "k": s }));
        assert!(
            !out.starts_with(&format!("k: {s}\n")) || s.is_empty(),
            "{s:?} unquoted: {out}"
        );
        assert_eq!(read(&out), json!({ "k": s }), "{out}");
    }
}

#[test]
fn writing_keeps_key_order() {
    let value = json!({"z": 1, "a": {"w": [1, "two"], "b": null}, "y": "x"});
    let out = to_string(&value);
    // `y` is a boolean to YAML 1.1: quoted as a key too.
    assert_eq!(out, "z: 1\na:\n  w:\n  - 1\n  - two\n  b: null\n\"y\": x\n");
}

proptest! {
    /// Any string (keys and values, multi-line, with spaces, tabs, quotes, non-ASCII) written
    /// out reads back as the same string, with Kubernetes' reading.
    #[test]
    fn any_string_round_trips(
        key in "[ -~\t\néü✓]{0,12}",
        value in prop_oneof![
            "[ -~\t\néü✓]{0,40}",
            "(yes|no|on|off|y|n|~|null|0[0-7]{1,3}|[0-9_]{1,6}|[0-9]{1,2}:[0-5][0-9]|0x[0-9A-F]{1,3}|\\.inf|[0-9]e[0-9])",
        ],
    ) {
        let doc = json!({ key.clone(): value.clone(), "n": [value.clone()] });
        let out = to_string(&doc);
        prop_assert_eq!(read(&out), doc, "{}", out);
    }
}
