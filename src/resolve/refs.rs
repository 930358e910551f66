//! Finding the `ko://` references of a YAML stream, with the exact bytes each one's text
//! occupies, and checking that replacing them changed nothing else.
//!
//! A reference is a string scalar (untagged, `!!str` or `!`) whose whole value starts with
//! `ko://`, as ko takes them; the rest must be a Go import path. `ko://` in a comment or
//! inside a longer string is no reference. The parser (saphyr-parser) reports positions in
//! characters and its spans start at a node's properties (anchor, tag), so the scalar's own
//! text is found from there; quoted scalars are replaced between their quotes.

use std::borrow::Cow;
use std::ops::Range;

use saphyr_parser::{Event, Parser, ScalarStyle, ScanError, Tag};

use super::stream::CharIndex;
use crate::importpath::{self, ImportPathError};

/// A `ko://` reference in the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// The import path (without `ko://`).
    pub import_path: String,
    /// The bytes of the stream to replace: the scalar's text, inside its quotes if quoted.
    pub range: Range<usize>,
    /// The scalar's ordinal among the stream's scalar events.
    scalar: usize,
}

/// Why the references of a stream cannot be found; each with the byte offset it is at.
#[derive(Debug)]
pub enum RefsError {
    Yaml(usize, ScanError),
    InvalidImportPath(usize, String, ImportPathError),
    NotInPlace(usize, String),
}

/// Whether a scalar with this tag is a string that ko would resolve.
fn is_string(tag: Option<&Tag>) -> bool {
    match tag {
        None => true,
        Some(t) => {
            (t.handle == "tag:yaml.org,2002:" && t.suffix == "str")
                || (t.handle.is_empty() && t.suffix == "!")
        }
    }
}

/// The byte offset where a scalar's own text starts, from its span's start: past its
/// properties (anchor, tag) and the blanks and comments after them, and for a block scalar
/// past its header line and the line breaks and indentation before the content.
fn content_start(text: &str, from: usize, style: ScalarStyle) -> usize {
    let b = text.as_bytes();
    let block = matches!(style, ScalarStyle::Literal | ScalarStyle::Folded);
    let skip_to = |i: usize, stop: &[u8]| {
        i + b[i..]
            .iter()
            .position(|c| stop.contains(c))
            .unwrap_or(b.len() - i)
    };
    let mut i = from;
    loop {
        match b.get(i) {
            Some(b' ' | b'\t' | b'\r' | b'\n') => i += 1,
            Some(b'#') => i = skip_to(i, b"\n"),
            Some(b'&' | b'!') => i = skip_to(i, b" \t\r\n"),
            Some(b'|' | b'>') if block => i = skip_to(i, b"\n"),
            _ => return i,
        }
    }
}

/// The bytes of the scalar with `value` whose text starts at `start` to replace: the text
/// itself, or for a quoted scalar the text between its quotes. `None` when the source is
/// not `value` written out as is (escapes, folded lines).
fn replace_range(
    text: &str,
    start: usize,
    value: &str,
    style: ScalarStyle,
) -> Option<Range<usize>> {
    let quote = match style {
        ScalarStyle::SingleQuoted => "'",
        ScalarStyle::DoubleQuoted => "\"",
        _ => "",
    };
    let rest = text[start..].strip_prefix(quote)?;
    let inner = start + quote.len();
    let after = rest.strip_prefix(value)?;
    after.starts_with(quote).then(|| inner..inner + value.len())
}

/// The reference a scalar event is, if any.
fn reference(
    text: &str,
    span_start: usize,
    (value, style, tag): (&str, ScalarStyle, Option<&Tag>),
    scalar: usize,
) -> Result<Option<Reference>, RefsError> {
    let Some(ip) = value.strip_prefix("ko://") else {
        return Ok(None);
    };
    if !is_string(tag) {
        return Ok(None);
    }
    let start = content_start(text, span_start, style);
    importpath::check(ip).map_err(|e| RefsError::InvalidImportPath(start, value.to_string(), e))?;
    let range = replace_range(text, start, value, style)
        .ok_or_else(|| RefsError::NotInPlace(start, value.to_string()))?;
    Ok(Some(Reference {
        import_path: ip.to_string(),
        range,
        scalar,
    }))
}

/// Every `ko://` reference of the YAML stream `text`, in order; parses the whole stream, so
/// invalid YAML anywhere is an error.
pub fn find(text: &str) -> Result<Vec<Reference>, RefsError> {
    let mut index = CharIndex::new(text);
    let mut refs = Vec::new();
    let mut scalars = 0;
    for event in Parser::new_from_str(text) {
        let (event, span) =
            event.map_err(|e| RefsError::Yaml(index.byte(e.marker().index()), e))?;
        if let Event::Scalar(value, style, _, tag) = &event {
            let start = index.byte(span.start.index());
            let found = reference(text, start, (value, *style, tag.as_deref()), scalars)?;
            refs.extend(found);
            scalars += 1;
        }
    }
    Ok(refs)
}

/// `text` with each reference's range replaced by its replacement (in the same order).
pub fn apply(text: &str, refs: &[Reference], replacements: &[&str]) -> String {
    let mut out = String::with_capacity(text.len() + 100 * refs.len());
    let mut at = 0;
    for (r, with) in refs.iter().zip(replacements) {
        out.push_str(&text[at..r.range.start]);
        out.push_str(with);
        at = r.range.end;
    }
    out.push_str(&text[at..]);
    out
}

/// An event without positions, comparable across the input and the output.
fn owned(event: Event<'_>) -> Event<'static> {
    let tag = |t: Option<Cow<'_, Tag>>| t.map(|t| Cow::Owned(t.into_owned()));
    match event {
        Event::Scalar(v, s, a, t) => Event::Scalar(Cow::Owned(v.into_owned()), s, a, tag(t)),
        Event::SequenceStart(a, t) => Event::SequenceStart(a, tag(t)),
        Event::MappingStart(a, t) => Event::MappingStart(a, tag(t)),
        Event::Nothing => Event::Nothing,
        Event::StreamStart => Event::StreamStart,
        Event::StreamEnd => Event::StreamEnd,
        Event::DocumentStart(e) => Event::DocumentStart(e),
        Event::DocumentEnd => Event::DocumentEnd,
        Event::Alias(a) => Event::Alias(a),
        Event::SequenceEnd => Event::SequenceEnd,
        Event::MappingEnd => Event::MappingEnd,
    }
}

/// Checks that `output` reads as `input` with exactly the references' values replaced (a
/// replacement that YAML would read otherwise, such as one with a flow indicator, fails
/// here). On a difference, the byte offset in `input` where it is.
pub fn verify(
    input: &str,
    output: &str,
    refs: &[Reference],
    replacements: &[&str],
) -> Result<(), usize> {
    let mut expected = Vec::new();
    let mut replaced = refs.iter().zip(replacements).peekable();
    let mut scalars = 0;
    let mut index = CharIndex::new(input);
    for event in Parser::new_from_str(input) {
        let (mut event, span) = event.map_err(|e| index.byte(e.marker().index()))?;
        if let Event::Scalar(value, ..) = &mut event {
            if let Some((_, with)) = replaced.next_if(|(r, _)| r.scalar == scalars) {
                *value = Cow::Owned(with.to_string());
            }
            scalars += 1;
        }
        expected.push((owned(event), index.byte(span.start.index())));
    }
    let mut expected = expected.into_iter();
    for event in Parser::new_from_str(output) {
        let (want, at) = expected.next().unwrap_or((Event::Nothing, input.len()));
        match event {
            Ok((got, _)) if got == want => {}
            _ => return Err(at),
        }
    }
    match expected.next() {
        Some((_, at)) => Err(at),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The text each reference's range covers, and its import path.
    fn found(text: &str) -> Vec<(&str, String)> {
        let refs = find(text).unwrap();
        refs.into_iter()
            .map(|r| (&text[r.range], r.import_path))
            .collect()
    }

    #[test]
    fn ranges_skip_properties_quotes_and_block_headers() {
        let text = "é: 'ko://x/a'\n&a 'ko://x/b' : [ !!str \"ko://x/c\" , *a ]  # ko://c\r\n\
                    k: &b !!str # note\r\n  |-  # h\r\n    ko://x/d\r\n\
                    l: see ko://x/e\nm: !foo ko://x/f\nn: ! ko://x/g\n";
        let got = found(text);
        let ips: Vec<&str> = got.iter().map(|(_, ip)| ip.as_str()).collect();
        assert_eq!(ips, ["x/a", "x/b", "x/c", "x/d", "x/g"]);
        let texts: Vec<&str> = got.iter().map(|(t, _)| *t).collect();
        assert_eq!(
            texts,
            ips.iter()
                .map(|ip| format!("ko://{ip}"))
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn errors_carry_their_offsets() {
        let at = |text: &str| match find(text).unwrap_err() {
            RefsError::Yaml(at, _) | RefsError::InvalidImportPath(at, ..) => at,
            RefsError::NotInPlace(at, _) => at + 1000,
        };
        assert_eq!(at("a: é\nb: \"ko://a b\"\n"), 9);
        assert_eq!(at("a: é\nb: \"ko://a\\x62\"\n"), 1009);
        assert_eq!(at("a: é\nb: [c\nd: 1\n"), 13);
    }
}
