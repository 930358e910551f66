"""rko_toolchain: which rko binary the rules run.

Instantiate it in the `toolchains//` cell as `rko`:

    rko_toolchain(name = "rko", rko = ":rko_bin", visibility = ["PUBLIC"])

with `:rko_bin` an `http_file(urls = [...], sha256 = "...", executable = True)` of a
released rko, or `rko_local_binary(src = ...)` for one built locally.
"""

load(":providers.bzl", "RkoToolchainInfo")

def _rko_toolchain_impl(ctx: AnalysisContext) -> list[Provider]:
    return [DefaultInfo(), RkoToolchainInfo(rko = ctx.attrs.rko[RunInfo])]

rko_toolchain = rule(
    impl = _rko_toolchain_impl,
    doc = "The rko binary of the rules_ko Buck2 rules.",
    attrs = {
        "rko": attrs.exec_dep(providers = [RunInfo], doc = "The rko executable: an http_file(executable = True), or an rko_local_binary."),
    },
    is_toolchain_rule = True,
)

def _rko_local_binary_impl(ctx: AnalysisContext) -> list[Provider]:
    return [DefaultInfo(default_output = ctx.attrs.src), RunInfo(args = cmd_args(ctx.attrs.src))]

rko_local_binary = rule(
    impl = _rko_local_binary_impl,
    doc = "An rko built locally (`cargo build --release` in a rules_ko checkout), checked into the toolchains cell or copied there, as a runnable target.",
    attrs = {
        "src": attrs.source(doc = "The rko executable."),
    },
)

# How the rules take the toolchain.
RKO_TOOLCHAIN_ATTR = attrs.default_only(attrs.toolchain_dep(default = "toolchains//:rko", providers = [RkoToolchainInfo]))
