//! ko's templates in `.ko.yaml` flags and ldflags: `{{.Env.NAME}}`, `{{.Git.FIELD}}`,
//! `{{.Date}}` and `{{.Timestamp}}`, with Go's `{{-`/`-}}` trimming. Hand-written because
//! only these field forms are needed, and an evaluator of exactly them can say what is
//! wrong: a field that does not exist, an environment variable that is not set (ko runs
//! Go's text/template with `missingkey=error`), or an action rko does not evaluate
//! (pipelines, functions, `.GoEnv`) — each an error naming it, never a guess.

use std::collections::BTreeMap;

use super::git::GitInfo;

/// ko's `.Git` fields, in its order.
pub const GIT_FIELDS: &[&str] = &[
    "Branch",
    "Tag",
    "ShortCommit",
    "FullCommit",
    "CommitDate",
    "CommitTimestamp",
    "IsDirty",
    "IsClean",
    "TreeState",
];

/// The values a template can name. `git` is asked for only when a template names `.Git`.
pub struct Data<'a> {
    /// The build's environment (ko: its defaults, the process's, the build's; `LDFLAGS`
    /// empty unless set).
    pub env: &'a BTreeMap<String, String>,
    pub git: &'a dyn Fn() -> GitInfo,
    /// Seconds since the epoch: `SOURCE_DATE_EPOCH`, else now (as ko).
    pub date: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error(
        "{template:?}: {{{{ without a closing }}}}; expected {{{{.Env.NAME}}}}, {{{{.Git.FIELD}}}}, {{{{.Date}}}} or {{{{.Timestamp}}}}"
    )]
    Unclosed { template: String },
    #[error(
        "{template:?}: rko evaluates only the fields {{{{.Env.NAME}}}}, {{{{.Git.FIELD}}}}, {{{{.Date}}}} and {{{{.Timestamp}}}}, found {{{{{action}}}}}; write the value out, or pass it through the environment as {{{{.Env.NAME}}}}"
    )]
    Unsupported { template: String, action: String },
    #[error(
        "{template:?}: unknown template field {field}; expected .Env.NAME, .Git.FIELD ({}), .Date or .Timestamp",
        GIT_FIELDS.join(", ")
    )]
    UnknownField { template: String, field: String },
    #[error(
        "{template:?}: {{{{.Env.{name}}}}} names an environment variable that is not set (ko fails too); set {name}, in the environment or in the build's env (or defaultEnv) in .ko.yaml"
    )]
    MissingEnv { template: String, name: String },
}

fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_alphabetic() || c == '_')
        && chars.all(|c| c.is_alphanumeric() || c == '_')
}

/// Expands the template `t`.
pub fn expand(t: &str, data: &Data<'_>) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(t.len());
    let mut rest = t;
    while let Some(open) = rest.find("{{") {
        let mut text = &rest[..open];
        let mut inner = &rest[open + 2..];
        let close = inner.find("}}").ok_or_else(|| TemplateError::Unclosed {
            template: t.to_string(),
        })?;
        let after = &inner[close + 2..];
        inner = &inner[..close];
        // Go's trim markers: "{{- " and " -}}" (the space is part of the marker).
        let trim_left = inner.starts_with("- ") || inner.starts_with("-\t") || inner == "-";
        if trim_left {
            inner = &inner[1..];
            text = text.trim_end_matches([' ', '\t', '\r', '\n']);
        }
        let trim_right = inner.ends_with(" -") || inner.ends_with("\t-");
        if trim_right {
            inner = &inner[..inner.len() - 1];
        }
        out.push_str(text);
        out.push_str(&field(
            t,
            inner.trim_matches([' ', '\t', '\r', '\n']),
            data,
        )?);
        rest = match trim_right {
            true => after.trim_start_matches([' ', '\t', '\r', '\n']),
            false => after,
        };
    }
    out.push_str(rest);
    Ok(out)
}

fn field(t: &str, action: &str, data: &Data<'_>) -> Result<String, TemplateError> {
    let unsupported = || TemplateError::Unsupported {
        template: t.to_string(),
        action: action.to_string(),
    };
    let unknown = |field: &str| TemplateError::UnknownField {
        template: t.to_string(),
        field: field.to_string(),
    };
    let Some(path) = action.strip_prefix('.') else {
        return Err(unsupported());
    };
    let parts: Vec<&str> = path.split('.').collect();
    if !parts.iter().all(|p| is_ident(p)) {
        return Err(unsupported());
    }
    match parts.as_slice() {
        ["Date"] => Ok(crate::oci::config::rfc3339_signed(data.date)),
        ["Timestamp"] => Ok(data.date.to_string()),
        ["Env", name] => data
            .env
            .get(*name)
            .cloned()
            .ok_or_else(|| TemplateError::MissingEnv {
                template: t.to_string(),
                name: name.to_string(),
            }),
        ["Git", name] => (data.git)().field(name).ok_or_else(|| unknown(action)),
        ["GoEnv", ..] => Err(unsupported()),
        _ => Err(unknown(action)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data_with<R>(f: impl FnOnce(&Data<'_>) -> R) -> R {
        let env: BTreeMap<String, String> = [("VERSION", "1.2.3"), ("LDFLAGS", "")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let git = || GitInfo {
            branch: "main".into(),
            tag: "v0.0.0".into(),
            short_commit: "abc1234".into(),
            full_commit: "abc1234def".into(),
            commit_date: 1_700_000_000,
            dirty: true,
        };
        f(&Data {
            env: &env,
            git: &git,
            date: 1_700_000_000,
        })
    }

    #[test]
    fn expands_ko_fields() {
        data_with(|d| {
            let x = |t: &str| expand(t, d).unwrap();
            assert_eq!(x("-X main.v={{.Env.VERSION}}"), "-X main.v=1.2.3");
            assert_eq!(
                x("{{ .Git.ShortCommit }}-{{.Git.TreeState}}"),
                "abc1234-dirty"
            );
            assert_eq!(x("{{.Git.IsDirty}} {{.Git.IsClean}}"), "true false");
            assert_eq!(
                x("{{.Date}} {{.Timestamp}}"),
                "2023-11-14T22:13:20Z 1700000000"
            );
            assert_eq!(x("{{.Git.CommitDate}}"), "2023-11-14T22:13:20Z");
            assert_eq!(x("a  {{- .Env.LDFLAGS -}}  b"), "ab");
            assert_eq!(x("no template"), "no template");
        });
    }

    #[test]
    fn errors_name_what_is_wrong() {
        data_with(|d| {
            let e = |t: &str| expand(t, d).unwrap_err().to_string();
            assert!(e("{{.Nope}}").contains("unknown template field .Nope"));
            assert!(e("{{.Git.Commit}}").contains("unknown template field .Git.Commit"));
            assert!(e("{{.Env.UNSET_X}}").contains("{{.Env.UNSET_X}} names an environment"));
            assert!(e("{{.GoEnv.GOOS}}").contains("found {{.GoEnv.GOOS}}"));
            assert!(e("{{ printf \"%s\" .Date }}").contains("evaluates only"));
            assert!(e("{{.Date").contains("without a closing"));
            assert!(e("{{.Env}}").contains("unknown template field .Env"));
        });
    }
}
