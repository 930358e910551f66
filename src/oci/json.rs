//! The two JSON shapes rko writes: compact as Go's `json.Marshal` (image documents, whose
//! bytes are hashed) and pretty with a trailing newline (rko's own descriptor, push manifest
//! and report files, which people read).

use serde::Serialize;

/// The most rko reads of one JSON document: a layout's `index.json`, a manifest, an index,
/// a config, `rko-sources.json` — from disk or from a registry. 16 MiB: a manifest of
/// 100,000 layers is about 13 MB (containers/image allows 4 MiB).
pub const JSON_LIMIT: u64 = 16 << 20;

/// Compact JSON as Go's `json.Marshal` writes it (no spaces, `<>&` escaped).
pub fn go(v: &impl Serialize) -> Vec<u8> {
    let s = serde_json::to_string(v).expect("image JSON serializes");
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out.into_bytes()
}

/// Pretty JSON with a trailing newline.
pub fn pretty(v: &impl Serialize) -> Vec<u8> {
    let mut out = serde_json::to_vec_pretty(v).expect("rko's files serialize");
    out.push(b'\n');
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn go_escapes_html_characters() {
        let v = serde_json::json!({"a": "<&>\u{2028}"});
        assert_eq!(super::go(&v), br#"{"a":"\u003c\u0026\u003e\u2028"}"#);
        assert_eq!(super::pretty(&1), b"1\n");
    }
}
