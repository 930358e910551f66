"""WORKSPACE setup: the rko toolchain, prebuilt (URL + sha256) or built from source.

    load("@rules_ko//rules/bazel:repositories.bzl", "rules_ko_dependencies", "rules_ko_register_toolchains")
    rules_ko_dependencies()
    rules_ko_register_toolchains(urls = [...], sha256 = "...")   # users: a release binary
    rules_ko_register_toolchains()                               # development: cargo build
"""

def _cpu_constraint(rctx):
    machine = rctx.execute(["uname", "-m"]).stdout.strip()
    return {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}.get(machine, machine)

def _rko_repository_impl(rctx):
    if rctx.attr.urls:
        if not rctx.attr.sha256:
            fail("rko_repository %s: attribute 'sha256': expected the sha256 of the rko binary at %s, found none; a download without a checksum is not reproducible" % (rctx.name, rctx.attr.urls[0]))
        rctx.download(url = rctx.attr.urls, output = "rko", sha256 = rctx.attr.sha256, executable = True)
        how = "downloaded from " + rctx.attr.urls[0]
    elif rctx.os.environ.get("RKO_BINARY"):
        # A binary built outside Bazel (CI builds it with cargo before running Bazel).
        binary = rctx.os.environ["RKO_BINARY"]
        res = rctx.execute(["cp", binary, "rko"])
        if res.return_code != 0:
            fail("rko_repository %s: RKO_BINARY=%s: expected an rko executable, found: %s" % (rctx.name, binary, res.stderr))
        how = "copied from RKO_BINARY=" + binary
    else:
        cargo = rctx.which("cargo")
        if not cargo:
            fail("rko_repository %s: building rko from source needs cargo on PATH, found none. Install Rust (rustup.rs), set RKO_BINARY to a built rko, or give urls + sha256 of a release binary" % rctx.name)
        manifest = rctx.path(rctx.attr.cargo_toml)
        # cargo's own default, next to Cargo.toml: a rebuild after `bazel clean --expunge` or
        # in another workspace is incremental, as any cargo build of the checkout is.
        target = rctx.os.environ.get("CARGO_TARGET_DIR") or str(manifest.dirname) + "/target"
        rctx.report_progress("cargo build --release (rko)")
        res = rctx.execute(
            [cargo, "build", "--release", "--locked", "--bin", "rko", "--manifest-path", str(manifest), "--target-dir", target],
            timeout = 3600,
            quiet = False,
        )
        if res.return_code != 0:
            fail("rko_repository %s: cargo build of rko failed (exit %d):\n%s" % (rctx.name, res.return_code, res.stderr))
        rctx.execute(["cp", target + "/release/rko", "rko"])
        how = "built by cargo from " + str(manifest)
    rctx.file("BUILD.bazel", """# rko, {how}.
load("{toolchain_bzl}", "rko_toolchain")

exports_files(["rko"], visibility = ["//visibility:public"])

rko_toolchain(
    name = "rko_toolchain",
    rko = ":rko",
)

toolchain(
    name = "toolchain",
    exec_compatible_with = ["@platforms//os:linux", "@platforms//cpu:{cpu}"],
    toolchain = ":rko_toolchain",
    toolchain_type = "{toolchain_type}",
)
""".format(
        how = how,
        toolchain_bzl = str(Label("//rules/bazel:toolchain.bzl")),
        toolchain_type = str(Label("//rules/bazel:toolchain_type")),
        cpu = rctx.attr.cpu or _cpu_constraint(rctx),
    ))

rko_repository = repository_rule(
    implementation = _rko_repository_impl,
    doc = "The rko binary and its toolchain: downloaded (urls + sha256), copied from $RKO_BINARY, or built by cargo from this repository.",
    attrs = {
        "urls": attr.string_list(doc = "Where to download a prebuilt rko (linux executable)."),
        "sha256": attr.string(doc = "The sha256 of the downloaded rko; required with urls."),
        "cpu": attr.string(doc = "The @platforms//cpu value of the binary (default: this machine's)."),
        "cargo_toml": attr.label(default = Label("//:Cargo.toml"), doc = "rko's Cargo.toml, for a source build."),
    },
    environ = ["RKO_BINARY", "CARGO_TARGET_DIR", "PATH"],
    local = False,
)

def rules_ko_dependencies():
    """rules_ko needs only @platforms and @bazel_tools, which Bazel bundles."""
    pass

def rules_ko_register_toolchains(name = "rko", urls = [], sha256 = "", cpu = ""):
    """Sets up @<name> (the rko binary) and registers its toolchain.

    Args:
      name: the repository name; ko_base uses @rko//:rko unless told otherwise.
      urls: download a prebuilt rko from these URLs (give sha256 too). Empty: build it from
        source with cargo, or copy $RKO_BINARY when set.
      sha256: the sha256 of the downloaded binary.
      cpu: the binary's @platforms//cpu value (default: this machine's).
    """
    rko_repository(name = name, urls = urls, sha256 = sha256, cpu = cpu)
    native.register_toolchains("@%s//:toolchain" % name)
