"""WORKSPACE setup: the rko toolchain, prebuilt (URL + sha256) or built from source.

    load("@rules_ko//rules/bazel:repositories.bzl", "rules_ko_dependencies", "rules_ko_register_toolchains")
    rules_ko_dependencies()
    rules_ko_register_toolchains(urls = [...], sha256 = "...")   # users: a release binary
    rules_ko_register_toolchains()                               # development: cargo build

@rko holds one rko binary and declares a toolchain for each execution platform rules_ko
knows (linux and macOS, x86_64 and aarch64): the binary's own, and for the others a
toolchain that fails analysis with "no rko for this platform" and what to set, instead
of a bare toolchain-resolution error.
"""

load("@bazel_tools//tools/build_defs/repo:http.bzl", "http_archive")
load("@bazel_tools//tools/build_defs/repo:utils.bzl", "maybe")

# (os, cpu) of the execution platforms @rko declares a toolchain for.
EXEC_PLATFORMS = [
    ("linux", "x86_64"),
    ("linux", "aarch64"),
    ("macos", "x86_64"),
    ("macos", "aarch64"),
]

def _os_constraint(rctx):
    name = rctx.os.name.lower()
    if name.startswith("mac os") or name.startswith("darwin"):
        return "macos"
    if name.startswith("windows"):
        return "windows"
    return "linux" if name.startswith("linux") else name

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
    os = rctx.attr.os or ("linux" if rctx.attr.urls else _os_constraint(rctx))
    cpu = rctx.attr.cpu or _cpu_constraint(rctx)
    build = [
        "# rko, {how}, for {os}/{cpu}.".format(how = how, os = os, cpu = cpu),
        'load("{}", "rko_missing_toolchain", "rko_toolchain")'.format(Label("//rules/bazel:toolchain.bzl")),
        "",
        'exports_files(["rko"], visibility = ["//visibility:public"])',
        "",
        'rko_toolchain(name = "rko_toolchain", rko = ":rko")',
    ]
    platforms = EXEC_PLATFORMS if (os, cpu) in EXEC_PLATFORMS else [(os, cpu)] + EXEC_PLATFORMS
    for exec_os, exec_cpu in platforms:
        name = "%s_%s" % (exec_os, exec_cpu)
        impl = ":rko_toolchain"
        if (exec_os, exec_cpu) != (os, cpu):
            impl = ":rko_missing_" + name
            build.append("""
rko_missing_toolchain(
    name = "rko_missing_{name}",
    exec_platform = "{exec_os}/{exec_cpu}",
    have = "{os}/{cpu}",
    how = {how},
)""".format(name = name, exec_os = exec_os, exec_cpu = exec_cpu, os = os, cpu = cpu, how = repr(how)))
        build.append("""
toolchain(
    name = "toolchain_{name}",
    exec_compatible_with = ["@platforms//os:{exec_os}", "@platforms//cpu:{exec_cpu}"],
    toolchain = "{impl}",
    toolchain_type = "{toolchain_type}",
)""".format(name = name, exec_os = exec_os, exec_cpu = exec_cpu, impl = impl, toolchain_type = Label("//rules/bazel:toolchain_type")))
    rctx.file("BUILD.bazel", "\n".join(build) + "\n")

rko_repository = repository_rule(
    implementation = _rko_repository_impl,
    doc = "The rko binary and its toolchain: downloaded (urls + sha256), copied from $RKO_BINARY, or built by cargo from this repository.",
    attrs = {
        "urls": attr.string_list(doc = "Where to download a prebuilt rko (a linux executable unless os says otherwise)."),
        "sha256": attr.string(doc = "The sha256 of the downloaded rko; required with urls."),
        "os": attr.string(doc = "The @platforms//os value of the binary (default: linux for urls, else this machine's)."),
        "cpu": attr.string(doc = "The @platforms//cpu value of the binary (default: this machine's)."),
        "cargo_toml": attr.label(default = Label("//:Cargo.toml"), doc = "rko's Cargo.toml, for a source build."),
    },
    environ = ["RKO_BINARY", "CARGO_TARGET_DIR", "PATH"],
    local = False,
)

def rules_ko_dependencies():
    """The repositories rules_ko needs beyond Bazel's bundled @platforms and @bazel_tools:
    @bazel_skylib (its bzl_library targets), unless the workspace defines it already."""
    maybe(
        http_archive,
        name = "bazel_skylib",
        sha256 = "1c531376ac7e5a180e0237938a2536de0c54d93f5c278634818e0efc952dd56c",
        urls = [
            "https://mirror.bazel.build/github.com/bazelbuild/bazel-skylib/releases/download/1.0.3/bazel-skylib-1.0.3.tar.gz",
            "https://github.com/bazelbuild/bazel-skylib/releases/download/1.0.3/bazel-skylib-1.0.3.tar.gz",
        ],
    )

def rules_ko_register_toolchains(name = "rko", urls = [], sha256 = "", os = "", cpu = ""):
    """Sets up @<name> (the rko binary) and registers its toolchains, one per exec platform.

    Args:
      name: the repository name; ko_base uses @rko//:rko unless told otherwise.
      urls: download a prebuilt rko from these URLs (give sha256 too). Empty: build it from
        source with cargo, or copy $RKO_BINARY when set.
      sha256: the sha256 of the downloaded binary.
      os: the binary's @platforms//os value (default: linux for urls, else this machine's).
      cpu: the binary's @platforms//cpu value (default: this machine's).
    """
    rko_repository(name = name, urls = urls, sha256 = sha256, os = os, cpu = cpu)
    native.register_toolchains("@%s//:all" % name)
