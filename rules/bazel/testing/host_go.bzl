"""host_go_binary: a Go program built with the host's `go`, for tests and the example.

A stand-in for rules_go's go_binary where rules_go cannot be fetched (no network): it runs
`go build -trimpath` on srcs as the main package of module `importpath`, for the target
platform's GOOS/GOARCH, with CGO off. Standard library imports only. In a real workspace use
rules_go; ko_image takes either.
"""

load("//rules/bazel/private:platform.bzl", "PLATFORM_ATTRS", "target_platform")
load("//starlark:ko.bzl", "PLATFORMS")
load("//starlark/testing:go_build.bzl", "GO_BUILD_SCRIPT")


def _host_go_binary_impl(ctx):
    platform = target_platform(ctx)
    if not platform:
        fail("host_go_binary %s: the target platform is none rules_ko knows" % ctx.label)
    p = PLATFORMS[platform]
    out = ctx.actions.declare_file(ctx.label.name)
    ctx.actions.run_shell(
        command = GO_BUILD_SCRIPT,
        arguments = [out.path, ctx.attr.importpath, p["goos"], p["goarch"], p["goarm"]] + [f.path for f in ctx.files.srcs],
        inputs = ctx.files.srcs,
        outputs = [out],
        mnemonic = "HostGoBuild",
        progress_message = "HostGoBuild %s (%s)" % (ctx.label, platform),
        use_default_shell_env = True,
    )
    return [DefaultInfo(files = depset([out]), executable = out)]

host_go_binary = rule(
    implementation = _host_go_binary_impl,
    doc = "A Go main package built by the host's go for the target platform (tests and examples only).",
    attrs = dict(PLATFORM_ATTRS, **{
        "srcs": attr.label_list(allow_files = [".go"], mandatory = True, doc = "The package's .go files."),
        "importpath": attr.string(mandatory = True, doc = "The module path (also the import path)."),
    }),
    executable = True,
)
