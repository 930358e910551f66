//! The tool requirement of the tool-driven tests (tests/common/require.rs): a missing tool
//! skips the test with a message naming it, and under `RKO_TEST_REQUIRE_TOOLS=1` fails it.
//! The modes are checked by running this test binary's own probe test in a child process,
//! through the real test harness, with and without the variable.

mod common;

use std::process::{Command, Output};

use common::require::{
    REQUIRE_TOOLS_VAR, find_program, install_hint, not_installed, require_as, unavailable,
};

/// A tool no machine has.
const MISSING: &str = "rko-test-no-such-tool";
/// Set for the child process only: the probe does nothing without it.
const PROBE_VAR: &str = "RKO_TEST_REQUIRE_PROBE";

#[test]
#[ignore = "run in a child process by the tests of this file"]
fn probe_requires_a_missing_tool() {
    if std::env::var_os(PROBE_VAR).is_none() {
        return;
    }
    common::require_tools!("sh", MISSING);
    panic!("`{MISSING}` was found, the probe cannot test anything");
}

/// Runs the probe in a child process with `RKO_TEST_REQUIRE_TOOLS` set to `strict` (or
/// unset); returns its output and its stdout and stderr together.
fn run_probe(strict: Option<&str>) -> (Output, String) {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "probe_requires_a_missing_tool",
        "--exact",
        "--ignored",
        "--test-threads=1",
    ])
    .env(PROBE_VAR, "1");
    match strict {
        Some(v) => cmd.env(REQUIRE_TOOLS_VAR, v),
        None => cmd.env_remove(REQUIRE_TOOLS_VAR),
    };
    let out = cmd.output().unwrap();
    let text = format!(
        "--- stdout\n{}\n--- stderr\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out, text)
}

#[test]
fn a_missing_tool_skips_the_test_saying_so_on_stderr() {
    for strict in [None, Some(""), Some("0")] {
        let (out, text) = run_probe(strict);
        assert!(out.status.success(), "{strict:?}: {text}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        // Not captured by the harness: the skip shows although the test passed.
        assert!(
            stderr.contains(&format!(
                "skipping probe_requires_a_missing_tool: `{MISSING}` is not installed\n"
            )),
            "{strict:?}: {text}"
        );
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("1 passed"),
            "{strict:?}: {text}"
        );
    }
}

#[test]
fn with_rko_test_require_tools_a_missing_tool_fails_the_test() {
    let (out, text) = run_probe(Some("1"));
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains(&format!(
            "probe_requires_a_missing_tool cannot run: `{MISSING}` is not installed; RKO_TEST_REQUIRE_TOOLS=1 makes a missing tool a failure"
        )),
        "{text}"
    );
    assert!(!text.contains("skipping"), "{text}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("1 failed"),
        "{text}"
    );
}

#[test]
fn a_tool_on_path_is_found_and_a_missing_one_is_named_with_its_package() {
    // `sh` is on every PATH the tests run with.
    let sh = find_program("sh").expect("sh on PATH");
    assert!(sh.ends_with("sh"), "{sh:?}");
    assert_eq!(unavailable("sh"), None);
    assert!(require_as(&["sh"], true, "t"));
    assert_eq!(find_program(MISSING), None);
    assert_eq!(
        unavailable(MISSING),
        Some(format!("`{MISSING}` is not installed"))
    );
    assert_eq!(
        not_installed("skopeo"),
        "`skopeo` is not installed (apt install skopeo)"
    );
    assert_eq!(install_hint("htpasswd"), Some("apt install apache2-utils"));
    assert_eq!(install_hint("bazel"), Some("apt install bazel-bootstrap"));
}

#[test]
#[should_panic(expected = "t cannot run: `rko-test-no-such-tool` is not installed")]
fn require_as_strict_panics_naming_the_tool() {
    require_as(&[MISSING], true, "t");
}
