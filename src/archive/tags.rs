//! Push tags: from flags and tag files, with `{KEY}` placeholders filled from Bazel-style
//! workspace status files (`KEY value` lines).

use std::path::PathBuf;

use anyhow::Result;

/// The tags from flags and tag files, with `{KEY}` replaced from the status files.
pub fn expand_tags(
    tags: &[String],
    tag_files: &[PathBuf],
    stamp_files: &[PathBuf],
) -> Result<Vec<String>> {
    let mut all = tags.to_vec();
    for f in tag_files {
        let text = fs_err::read_to_string(f)?;
        all.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(String::from),
        );
    }
    let mut status = std::collections::BTreeMap::new();
    for f in stamp_files {
        for line in fs_err::read_to_string(f)?.lines() {
            let (k, v) = line.split_once(' ').unwrap_or((line, ""));
            if !k.is_empty() {
                status.insert(k.to_string(), v.to_string());
            }
        }
    }
    let mut out = Vec::new();
    for t in all {
        let mut expanded = String::new();
        let mut rest = t.as_str();
        while let Some(open) = rest.find('{') {
            let Some(close) = rest[open..].find('}') else {
                anyhow::bail!("tag {t:?} has an unclosed '{{'; expected {{KEY}} placeholders");
            };
            let key = &rest[open + 1..open + close];
            let value = match status.get(key) {
                Some(v) => v,
                None if stamp_files.is_empty() => anyhow::bail!(
                    "tag {t:?} uses the workspace status key {key} but the build is not stamped; \
                     build with --stamp (or set stamp = 1 on the target), or drop the placeholder"
                ),
                None => anyhow::bail!(
                    "tag {t:?} uses the workspace status key {key}, which the status files do not \
                     have; keys found: {}",
                    status.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            };
            expanded.push_str(&rest[..open]);
            expanded.push_str(value);
            rest = &rest[open + close + 1..];
        }
        expanded.push_str(rest);
        if !out.contains(&expanded) {
            out.push(expanded);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_expand_from_status_files_and_tag_files() {
        let dir = tempfile::tempdir().unwrap();
        let stable = dir.path().join("stable-status.txt");
        std::fs::write(&stable, "STABLE_GIT_COMMIT abc123\nBUILD_USER ci bot\n").unwrap();
        let tag_file = dir.path().join("tags.txt");
        std::fs::write(&tag_file, "# release tags\n\nv1.2\nlatest\n").unwrap();
        let tags = expand_tags(
            &["git-{STABLE_GIT_COMMIT}".into(), "latest".into()],
            &[tag_file],
            std::slice::from_ref(&stable),
        )
        .unwrap();
        assert_eq!(tags, ["git-abc123", "latest", "v1.2"]);
        let unstamped = expand_tags(&["git-{STABLE_GIT_COMMIT}".into()], &[], &[]).unwrap_err();
        assert!(unstamped.to_string().contains("--stamp"), "{unstamped}");
        let unknown = expand_tags(&["{NOPE}".into()], &[], &[stable]).unwrap_err();
        assert!(
            unknown.to_string().contains("STABLE_GIT_COMMIT"),
            "{unknown}"
        );
    }
}
