"""The rko toolchain: which rko binary the rules run."""

def _rko_toolchain_impl(ctx):
    return [platform_common.ToolchainInfo(rko = ctx.executable.rko)]

rko_toolchain = rule(
    implementation = _rko_toolchain_impl,
    doc = "Declares an rko binary; wrap it in toolchain(toolchain_type = \"@rules_ko//rules/bazel:toolchain_type\").",
    attrs = {
        "rko": attr.label(
            mandatory = True,
            executable = True,
            allow_single_file = True,
            cfg = "exec",
            doc = "The rko executable.",
        ),
    },
)
