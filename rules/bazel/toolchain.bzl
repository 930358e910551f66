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

def _rko_missing_toolchain_impl(ctx):
    fail("rules_ko: no rko for this platform: expected an rko binary for the execution platform %s, found only @rko's for %s (%s). Set urls and sha256 (and os/cpu) of an rko built for %s in rules_ko_register_toolchains() (WORKSPACE) or rko.toolchain (MODULE.bazel), or run the actions on a %s machine (--extra_execution_platforms, remote execution)" % (
        ctx.attr.exec_platform,
        ctx.attr.have,
        ctx.attr.how,
        ctx.attr.exec_platform,
        ctx.attr.have,
    ))

rko_missing_toolchain = rule(
    implementation = _rko_missing_toolchain_impl,
    doc = "Stands for an rko the repository lacks: resolving it for an execution platform fails analysis saying what to set.",
    attrs = {
        "exec_platform": attr.string(mandatory = True, doc = "os/cpu of the execution platform it is registered for."),
        "have": attr.string(mandatory = True, doc = "os/cpu of the rko the repository has."),
        "how": attr.string(doc = "Where that rko came from."),
    },
)
