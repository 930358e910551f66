//! The YAML of a `.ko.yaml` as a small tree of scalars, sequences and mappings, each node
//! with the line it starts on, so every error can name `FILE:LINE`. Built from
//! saphyr-parser's events (the YAML parser the tree already uses for `rko resolve`);
//! `serde_yaml` is unmaintained, and a tree of our own keeps the line numbers a serde
//! deserializer would drop. Aliases are expanded, with a bound on the nodes made, so a
//! "billion laughs" file is an error, not an exhausted machine.

use saphyr_parser::{Event, Parser, ScalarStyle, Tag};

/// At most this many nodes, aliases expanded (a real `.ko.yaml` has a few hundred).
pub const NODE_LIMIT: usize = 100_000;

/// A YAML node and the line (1-based) it starts on.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub line: usize,
    pub value: Value,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// A scalar's value; `null` for `~`, `null` and an empty plain scalar.
    Scalar(Option<String>),
    Seq(Vec<Node>),
    /// Pairs in file order (keys may be any node).
    Map(Vec<(Node, Node)>),
}

/// Why the text is not the YAML of one document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

fn is_null(value: &str, style: ScalarStyle, tag: Option<&Tag>) -> bool {
    if tag.is_some_and(|t| t.handle == "tag:yaml.org,2002:" && t.suffix == "null") {
        return true;
    }
    tag.is_none()
        && style == ScalarStyle::Plain
        && matches!(value, "" | "~" | "null" | "Null" | "NULL")
}

/// Parses `text` as one YAML document (an empty text is a document of `null`).
pub fn parse(text: &str) -> Result<Node, YamlError> {
    let mut stack: Vec<(Node, Option<Node>, usize)> = Vec::new(); // (container, pending key, anchor)
    let mut anchors: std::collections::HashMap<usize, Node> = Default::default();
    let mut root: Option<Node> = None;
    let mut documents = 0;
    let mut nodes = 0usize;
    for event in Parser::new_from_str(text) {
        let (event, span) = event.map_err(|e| YamlError {
            line: e.marker().line(),
            column: e.marker().col() + 1,
            message: e.info().to_string(),
        })?;
        let line = span.start.line();
        let done: Option<(Node, usize)> = match event {
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    return Err(YamlError {
                        line,
                        column: span.start.col() + 1,
                        message: "a second YAML document; expected one document (remove the \
                                  `---` and what follows, or merge it into the first)"
                            .to_string(),
                    });
                }
                None
            }
            Event::Scalar(v, style, anchor, tag) => {
                let value = match is_null(&v, style, tag.as_deref()) {
                    true => None,
                    false => Some(v.into_owned()),
                };
                Some((
                    Node {
                        line,
                        value: Value::Scalar(value),
                    },
                    anchor,
                ))
            }
            Event::SequenceStart(anchor, _) => {
                let n = Node {
                    line,
                    value: Value::Seq(Vec::new()),
                };
                stack.push((n, None, anchor));
                None
            }
            Event::MappingStart(anchor, _) => {
                let n = Node {
                    line,
                    value: Value::Map(Vec::new()),
                };
                stack.push((n, None, anchor));
                None
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (n, _, anchor) = stack.pop().expect("the parser balances its events");
                Some((n, anchor))
            }
            Event::Alias(id) => {
                let n = anchors.get(&id).cloned().ok_or_else(|| YamlError {
                    line,
                    column: span.start.col() + 1,
                    message: "an alias to an unknown anchor".to_string(),
                })?;
                nodes += count(&n);
                Some((n, 0))
            }
            _ => None,
        };
        let Some((node, anchor)) = done else {
            continue;
        };
        nodes += 1;
        if nodes > NODE_LIMIT {
            return Err(YamlError {
                line,
                column: span.start.col() + 1,
                message: format!(
                    "more than {NODE_LIMIT} nodes (aliases expanded); expected a small config"
                ),
            });
        }
        if anchor > 0 {
            anchors.insert(anchor, node.clone());
        }
        match stack.last_mut() {
            None => root = Some(node),
            Some((parent, pending, _)) => match &mut parent.value {
                Value::Seq(items) => items.push(node),
                Value::Map(pairs) => match pending.take() {
                    None => *pending = Some(node),
                    Some(key) => pairs.push((key, node)),
                },
                Value::Scalar(_) => unreachable!("only containers are pushed"),
            },
        }
    }
    Ok(root.unwrap_or(Node {
        line: 1,
        value: Value::Scalar(None),
    }))
}

fn count(n: &Node) -> usize {
    match &n.value {
        Value::Scalar(_) => 1,
        Value::Seq(items) => 1 + items.iter().map(count).sum::<usize>(),
        Value::Map(pairs) => {
            1 + pairs
                .iter()
                .map(|(k, v)| count(k) + count(v))
                .sum::<usize>()
        }
    }
}

/// `s` as a YAML double-quoted scalar: every character outside YAML's printable set, and
/// `"` and `\`, escaped, so any string reads back as itself.
#[cfg(any(test, fuzzing))]
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\t' | ' '..='~' => out.push(c),
            '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' if c != '\u{feff}' => out.push(c),
            '\u{10000}'.. => out.push(c),
            _ if (c as u32) <= 0xffff => out.push_str(&format!("\\u{:04x}", c as u32)),
            _ => out.push_str(&format!("\\U{:08x}", c as u32)),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scalar(n: &Node) -> Option<&str> {
        match &n.value {
            Value::Scalar(s) => s.as_deref(),
            _ => panic!("not a scalar: {n:?}"),
        }
    }

    #[test]
    fn lines_and_aliases() {
        let n = parse("a: &x\n  - one\n  - two\nb: *x\nc: ~\n").unwrap();
        let Value::Map(pairs) = &n.value else {
            panic!()
        };
        assert_eq!(pairs.len(), 3);
        assert_eq!(pairs[0].0.line, 1);
        assert_eq!(pairs[1].0.line, 4);
        assert_eq!(pairs[0].1.value, pairs[1].1.value);
        assert_eq!(scalar(&pairs[2].1), None);
    }

    #[test]
    fn errors_name_the_line() {
        let e = parse("a: b\nc: [d\n").unwrap_err();
        assert!(e.line >= 2, "{e:?}");
        let e = parse("a: 1\n---\nb: 2\n").unwrap_err();
        assert_eq!(e.line, 2, "{e:?}");
    }

    #[test]
    fn billion_laughs_is_bounded() {
        let mut text = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 0..8 {
            let prev = if i == 0 {
                "a".to_string()
            } else {
                format!("l{}", i - 1)
            };
            text.push_str(&format!(
                "l{i}: &l{i} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"
            ));
        }
        let e = parse(&text).unwrap_err();
        assert!(e.message.contains("nodes"), "{e:?}");
    }

    #[test]
    fn quote_reads_back() {
        for s in [
            "",
            "a\"b\\c",
            "\u{7f}\u{85}\u{feff}\u{1F600}",
            "\n\r\t x",
            "\u{0}",
        ] {
            let n = parse(&format!("k: {}", quote(s))).unwrap();
            let Value::Map(pairs) = &n.value else {
                panic!()
            };
            assert_eq!(scalar(&pairs[0].1), Some(s), "{}", quote(s));
        }
    }
}
