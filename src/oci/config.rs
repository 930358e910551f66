//! The image config file. Known fields are typed and ordered as go-containerregistry's
//! `ConfigFile` (so a config rewritten here reads like one ko wrote); fields this code does
//! not know are kept, sorted, after them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::oci::digest::Sha256Digest;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ConfigFile {
    #[serde(default)]
    pub architecture: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub author: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker_version: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<History>,
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub rootfs: RootFs,
    #[serde(default)]
    pub config: Config,
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(
        rename = "os.features",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_features: Option<Vec<String>>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub empty_layer: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub diff_ids: Vec<Sha256Digest>,
}

impl Default for RootFs {
    fn default() -> Self {
        RootFs {
            kind: "layers".to_string(),
            diff_ids: Vec::new(),
        }
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// The container config (`config` in the file), in go-containerregistry's field order.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Config {
    #[serde(rename = "AttachStderr", default, skip_serializing_if = "is_false")]
    pub attach_stderr: bool,
    #[serde(rename = "AttachStdin", default, skip_serializing_if = "is_false")]
    pub attach_stdin: bool,
    #[serde(rename = "AttachStdout", default, skip_serializing_if = "is_false")]
    pub attach_stdout: bool,
    #[serde(
        rename = "Cmd",
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "null_list"
    )]
    pub cmd: Option<Vec<String>>,
    #[serde(
        rename = "Healthcheck",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub healthcheck: Option<Value>,
    #[serde(
        rename = "Domainname",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub domainname: String,
    #[serde(
        rename = "Entrypoint",
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "null_list"
    )]
    pub entrypoint: Option<Vec<String>>,
    #[serde(
        rename = "Env",
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_vec"
    )]
    pub env: Vec<String>,
    #[serde(rename = "Hostname", default, skip_serializing_if = "String::is_empty")]
    pub hostname: String,
    #[serde(rename = "Image", default, skip_serializing_if = "String::is_empty")]
    pub image: String,
    #[serde(
        rename = "Labels",
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "null_map"
    )]
    pub labels: BTreeMap<String, String>,
    #[serde(
        rename = "OnBuild",
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "null_list"
    )]
    pub on_build: Option<Vec<String>>,
    #[serde(rename = "OpenStdin", default, skip_serializing_if = "is_false")]
    pub open_stdin: bool,
    #[serde(rename = "StdinOnce", default, skip_serializing_if = "is_false")]
    pub stdin_once: bool,
    #[serde(rename = "Tty", default, skip_serializing_if = "is_false")]
    pub tty: bool,
    #[serde(rename = "User", default, skip_serializing_if = "String::is_empty")]
    pub user: String,
    #[serde(
        rename = "Volumes",
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "null_map"
    )]
    pub volumes: BTreeMap<String, Value>,
    #[serde(
        rename = "WorkingDir",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub working_dir: String,
    #[serde(
        rename = "ExposedPorts",
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "null_map"
    )]
    pub exposed_ports: BTreeMap<String, Value>,
    #[serde(rename = "ArgsEscaped", default, skip_serializing_if = "is_false")]
    pub args_escaped: bool,
    #[serde(rename = "NetworkDisabled", default, skip_serializing_if = "is_false")]
    pub network_disabled: bool,
    #[serde(
        rename = "MacAddress",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub mac_address: String,
    #[serde(
        rename = "StopSignal",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub stop_signal: String,
    #[serde(
        rename = "Shell",
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "null_list"
    )]
    pub shell: Option<Vec<String>>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

fn null_list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    let v: Option<Vec<String>> = Option::deserialize(d)?;
    Ok(v.filter(|v| !v.is_empty()))
}

fn null_vec<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(d)?.unwrap_or_default())
}

fn null_map<'de, D: serde::Deserializer<'de>, V: Deserialize<'de>>(
    d: D,
) -> Result<BTreeMap<String, V>, D::Error> {
    Ok(Option::<BTreeMap<String, V>>::deserialize(d)?.unwrap_or_default())
}

impl Config {
    /// Sets `KEY=VALUE`, replacing an entry of the same key in place.
    pub fn set_env(&mut self, entry: &str) {
        let key = entry.split('=').next().unwrap_or(entry);
        match self
            .env
            .iter_mut()
            .find(|e| e.split('=').next() == Some(key))
        {
            Some(e) => *e = entry.to_string(),
            None => self.env.push(entry.to_string()),
        }
    }

    /// ko's `updatePath`: append `dir` to PATH, or set PATH to it.
    pub fn append_path(&mut self, dir: &str) {
        for e in self.env.iter_mut() {
            if let Some((k, v)) = e.split_once('=')
                && k == "PATH"
            {
                *e = format!("PATH={v}:{dir}");
                return;
            }
        }
        self.env.push(format!("PATH={dir}"));
    }
}

/// RFC 3339 UTC time for seconds since the epoch (what Go's `time.RFC3339` prints).
pub fn rfc3339(secs: u64) -> String {
    rfc3339_signed(secs as i64)
}

/// `secs` as RFC 3339 in UTC (`2006-01-02T15:04:05Z`), years 1 to 9999 as Go prints them.
pub fn rfc3339_signed(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_known_values() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        // Before 1970 too (git's dates; Go's zero time is year 1).
        assert_eq!(rfc3339_signed(-62_135_596_800), "0001-01-01T00:00:00Z");
        assert_eq!(rfc3339_signed(-1), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn unknown_fields_survive_and_nulls_read_as_empty() {
        let c: ConfigFile = serde_json::from_str(
            r#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},
                "config":{"Env":null,"Labels":null,"Cmd":null,"Custom":1},"moby.extra":true}"#,
        )
        .unwrap();
        let out = serde_json::to_string(&c).unwrap();
        assert!(out.contains(r#""moby.extra":true"#), "{out}");
        assert!(out.contains(r#""Custom":1"#), "{out}");
        assert!(!out.contains("null"), "{out}");
    }

    /// Found by fuzzing (fuzz/fuzz_targets/oci_json.rs): serde_json's default float parsing
    /// is not correctly rounded, so a number in a base config's unknown fields changed when
    /// the config was rewritten (4.5e300 came back as 4.5000000000000005e300).
    #[test]
    fn numbers_in_unknown_fields_survive_exactly() {
        let text = r#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"config":{"X":4.5e300},"y":0.1}"#;
        let c: ConfigFile = serde_json::from_str(text).unwrap();
        let out = serde_json::to_string(&c).unwrap();
        assert!(out.contains(r#""X":4.5e+300"#), "{out}");
        assert!(out.contains(r#""y":0.1"#), "{out}");
        assert_eq!(serde_json::from_str::<ConfigFile>(&out).unwrap(), c);
    }

    #[test]
    fn path_is_appended_as_ko_does() {
        let mut c = Config {
            env: vec!["PATH=/usr/bin".into(), "A=1".into()],
            ..Default::default()
        };
        c.append_path("/ko-app");
        assert_eq!(c.env[0], "PATH=/usr/bin:/ko-app");
        let mut c = Config::default();
        c.append_path("/ko-app");
        assert_eq!(c.env, vec!["PATH=/ko-app"]);
    }
}
