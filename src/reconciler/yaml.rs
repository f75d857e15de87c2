//! A fast block-style YAML writer for generated scrape jobs, byte-identical to
//! `serde_yaml_ng::to_string` (a property test holds it to that).
//!
//! serde_yaml_ng goes through libyaml's emitter, whose cost per event grows with the document:
//! 10,000 ServiceMonitors took about 2 s, most of it emitting. Scrape jobs are made of
//! mappings, sequences, booleans, integers and short strings, so this writer lays out the
//! structure itself and asks serde_yaml_ng only about scalars it cannot prove plain: a string
//! without whitespace is formatted alone (its style does not depend on where it stands), and
//! anything else (whitespace, line breaks, floats, tags) makes the whole value fall back to
//! serde_yaml_ng.

use serde_yaml_ng::Value;

/// `value` as serde_yaml_ng would write it.
pub fn to_string(value: &Value) -> String {
    let mut out = String::new();
    append(&mut out, value);
    out
}

/// Appends `value` to `out` as serde_yaml_ng would write it.
pub fn append(out: &mut String, value: &Value) {
    let start = out.len();
    if write(out, value, 0, Context::Root).is_none() {
        out.truncate(start);
        out.push_str(&serde_yaml_ng::to_string(value).expect("a YAML value always serializes"));
    }
}

/// Where a value is written.
#[derive(Clone, Copy, PartialEq)]
enum Context {
    /// The document itself.
    Root,
    /// After `key:` (a collection starts on the next line).
    MappingValue,
    /// After `- ` (a collection starts on the same line).
    SequenceItem,
}

/// Writes `value` at `indent`; `None` when it needs serde_yaml_ng.
fn write(out: &mut String, value: &Value, indent: usize, context: Context) -> Option<()> {
    match value {
        Value::Mapping(map) if map.is_empty() => line(out, "{}"),
        Value::Sequence(seq) if seq.is_empty() => line(out, "[]"),
        Value::Mapping(map) => {
            for (i, (key, item)) in map.iter().enumerate() {
                if i > 0 || context == Context::MappingValue {
                    if context == Context::MappingValue && i == 0 {
                        out.push('\n');
                    }
                    pad(out, indent);
                }
                let start = out.len();
                scalar(out, key)?;
                // libyaml writes a key over 128 characters in the `? ` form.
                if out.len() - start > 128 {
                    return None;
                }
                out.push(':');
                match item {
                    Value::Mapping(m) if !m.is_empty() => {
                        write(out, item, indent + 2, Context::MappingValue)?
                    }
                    // A sequence under a key is not indented further.
                    Value::Sequence(s) if !s.is_empty() => {
                        out.push('\n');
                        write_items(out, s, indent)?;
                    }
                    _ => {
                        out.push(' ');
                        write(out, item, indent + 2, Context::MappingValue)?;
                    }
                }
            }
            Some(())
        }
        Value::Sequence(seq) => {
            if context == Context::SequenceItem {
                // `- - a`: the nested sequence starts on the same line.
                for (i, item) in seq.iter().enumerate() {
                    if i > 0 {
                        pad(out, indent);
                    }
                    out.push_str("- ");
                    write(out, item, indent + 2, Context::SequenceItem)?;
                }
                Some(())
            } else {
                write_items(out, seq, indent)
            }
        }
        Value::Tagged(_) => None,
        scalar_value => {
            scalar(out, scalar_value)?;
            out.push('\n');
            Some(())
        }
    }
}

fn write_items(out: &mut String, seq: &[Value], indent: usize) -> Option<()> {
    for item in seq {
        pad(out, indent);
        out.push_str("- ");
        write(out, item, indent + 2, Context::SequenceItem)?;
    }
    Some(())
}

fn line(out: &mut String, text: &str) -> Option<()> {
    out.push_str(text);
    out.push('\n');
    Some(())
}

fn pad(out: &mut String, indent: usize) {
    out.extend(std::iter::repeat_n(' ', indent));
}

/// Writes a scalar as serde_yaml_ng writes it, when that does not depend on its position.
fn scalar(out: &mut String, value: &Value) -> Option<()> {
    use std::fmt::Write;
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) if n.is_i64() || n.is_u64() => write!(out, "{n}").ok()?,
        Value::String(s) if plain(s) => out.push_str(s),
        // No whitespace: never folded, and its style is the same anywhere in block context.
        Value::String(s)
            if !s.is_empty() && !s.chars().any(|c| c.is_whitespace() || c.is_control()) =>
        {
            let text = serde_yaml_ng::to_string(s).ok()?;
            let text = text.strip_suffix('\n')?;
            if text.contains('\n') {
                return None;
            }
            out.push_str(text);
        }
        _ => return None,
    }
    Some(())
}

/// Strings that are certainly written plain: a letter, `_`, `$`, `(` or `/` first, then only
/// characters with no meaning to YAML in block context, and not a word YAML reads as
/// something else.
fn plain(s: &str) -> bool {
    let mut chars = s.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    let first_ok = first.is_ascii_alphabetic() || matches!(first, '_' | '$' | '(' | '/');
    const WORDS: [&str; 12] = [
        "true", "false", "null", "yes", "no", "on", "off", "y", "n", "inf", "nan", "infinity",
    ];
    first_ok
        && chars.all(|c| c.is_ascii_alphanumeric() || "_./$(){}|;+*=-".contains(c))
        && !WORDS.iter().any(|w| w.eq_ignore_ascii_case(s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn scalar_strategy() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            // Words like those in configs, and characters YAML cares about.
            "[a-zA-Z0-9_$(){}|;:.,*+=/#&!%@'\"` ~?\\[\\]\\n-]{0,12}".prop_map(Value::from),
            prop::sample::select(vec![
                "true",
                "False",
                "null",
                "~",
                "0",
                "0|1",
                "1.5",
                ".inf",
                "-",
                "- a",
                "a: b",
                "#x",
                "${1}",
                "$(SHARD);|.+;.+",
                "(.+)",
                "Node;(.*)",
                "y",
                "NO",
                "0x1f",
                "1e3",
                "+1",
                "http://a:1/b",
                "",
                " ",
                "é",
                "a\tb",
            ])
            .prop_map(Value::from),
        ]
    }

    fn value_strategy() -> impl Strategy<Value = Value> {
        scalar_strategy().prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Sequence),
                prop::collection::vec(("[a-z_]{1,8}", inner), 0..5).prop_map(|items| {
                    Value::Mapping(
                        items
                            .into_iter()
                            .map(|(k, v)| (Value::from(k), v))
                            .collect(),
                    )
                }),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn writes_what_serde_yaml_ng_writes(value in value_strategy()) {
            prop_assert_eq!(to_string(&value), serde_yaml_ng::to_string(&value).unwrap());
        }
    }

    #[test]
    fn a_job_is_written_by_the_fast_path() {
        let job: Value = serde_yaml_ng::from_str(
            "job_name: a\nkubernetes_sd_configs:\n- role: endpoints\n  namespaces:\n    names: [x]\nrelabel_configs:\n- source_labels: [job]\n  regex: (.+);true\n- regex: 0|1\n  modulus: 2\nparams: {}\nscheme: https\n",
        )
        .unwrap();
        let mut out = String::new();
        assert!(write(&mut out, &job, 0, Context::Root).is_some());
        assert_eq!(out, serde_yaml_ng::to_string(&job).unwrap());
    }
}
