//! ko's templates in `.ko.yaml` flags and ldflags: `{{.Env.NAME}}`, `{{.GoEnv.NAME}}`,
//! `{{.Git.FIELD}}`, `{{.Date}}` and `{{.Timestamp}}`, with Go's `{{-`/`-}}` trimming.
//! Hand-written because only these field forms are needed, and an evaluator of exactly them
//! can say what is wrong: a field that does not exist, a variable that is not set (ko runs
//! Go's text/template with `missingkey=error`), or an action rko does not evaluate
//! (pipelines, functions) — each an error naming it, never a guess.

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
    /// ko's `.GoEnv`: `go env`, its keys overridden by the build's environment; asked for
    /// only when a template names `.GoEnv`. An error says why `go env` failed.
    pub go_env: &'a dyn Fn() -> Result<BTreeMap<String, String>, String>,
    /// Seconds since the epoch: `SOURCE_DATE_EPOCH`, else now (as ko).
    pub date: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error(
        "{template:?}: {{{{ without a closing }}}}; expected {{{{.Env.NAME}}}}, {{{{.GoEnv.NAME}}}}, {{{{.Git.FIELD}}}}, {{{{.Date}}}} or {{{{.Timestamp}}}}"
    )]
    Unclosed { template: String },
    #[error(
        "{template:?}: rko evaluates only the fields {{{{.Env.NAME}}}}, {{{{.GoEnv.NAME}}}}, {{{{.Git.FIELD}}}}, {{{{.Date}}}} and {{{{.Timestamp}}}}, found {{{{{action}}}}}; write the value out, or pass it through the environment as {{{{.Env.NAME}}}}"
    )]
    Unsupported { template: String, action: String },
    #[error(
        "{template:?}: unknown template field {field}; expected .Env.NAME, .GoEnv.NAME, .Git.FIELD ({}), .Date or .Timestamp",
        GIT_FIELDS.join(", ")
    )]
    UnknownField { template: String, field: String },
    #[error(
        "{template:?}: {{{{.Env.{name}}}}} names an environment variable that is not set (ko fails too); set {name}, in the environment or in the build's env (or defaultEnv) in .ko.yaml"
    )]
    MissingEnv { template: String, name: String },
    #[error(
        "{template:?}: {{{{.GoEnv.{name}}}}} names no variable of `go env` (ko fails too); use one `go env` prints, such as GOOS, GOARCH, GOVERSION or GOROOT"
    )]
    MissingGoEnv { template: String, name: String },
    #[error("{template:?}: {{{{.GoEnv.{name}}}}} needs `go env`, which failed: {why}")]
    GoEnvFailed {
        template: String,
        name: String,
        why: String,
    },
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
        ["GoEnv", name] => {
            let env = (data.go_env)().map_err(|why| TemplateError::GoEnvFailed {
                template: t.to_string(),
                name: name.to_string(),
                why,
            })?;
            env.get(*name)
                .cloned()
                .ok_or_else(|| TemplateError::MissingGoEnv {
                    template: t.to_string(),
                    name: name.to_string(),
                })
        }
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
        let go_env = || {
            Ok([
                ("GOOS", "linux"),
                ("GOARCH", "arm64"),
                ("GOVERSION", "go1.19.8"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect())
        };
        f(&Data {
            env: &env,
            git: &git,
            go_env: &go_env,
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
            assert_eq!(
                x("{{.GoEnv.GOOS}}/{{ .GoEnv.GOARCH }} {{.GoEnv.GOVERSION}}"),
                "linux/arm64 go1.19.8"
            );
        });
    }

    #[test]
    fn errors_name_what_is_wrong() {
        data_with(|d| {
            let e = |t: &str| expand(t, d).unwrap_err().to_string();
            assert!(e("{{.Nope}}").contains("unknown template field .Nope"));
            assert!(e("{{.Git.Commit}}").contains("unknown template field .Git.Commit"));
            assert!(e("{{.Env.UNSET_X}}").contains("{{.Env.UNSET_X}} names an environment"));
            assert!(e("{{.GoEnv.NOPE}}").contains("{{.GoEnv.NOPE}} names no variable of `go env`"));
            assert!(e("{{.GoEnv}}").contains("unknown template field .GoEnv"));
            assert!(e("{{.GoEnv.GOOS.X}}").contains("unknown template field .GoEnv.GOOS.X"));
            assert!(e("{{ printf \"%s\" .Date }}").contains("evaluates only"));
            assert!(e("{{.Date").contains("without a closing"));
            assert!(e("{{.Env}}").contains("unknown template field .Env"));
        });
        // `go env` failing is said, with why; nothing else asks for it.
        let env = BTreeMap::new();
        let git = GitInfo::default;
        let go_env = || Err("`go` is not on PATH".to_string());
        let d = Data {
            env: &env,
            git: &git,
            go_env: &go_env,
            date: 0,
        };
        let e = expand("{{.GoEnv.GOOS}}", &d).unwrap_err().to_string();
        assert!(
            e.contains("needs `go env`, which failed: `go` is not on PATH"),
            "{e}"
        );
        assert_eq!(expand("{{.Timestamp}}", &d).unwrap(), "0");
    }
}
