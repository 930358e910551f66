"""The part of Buck2's prelude that rules_ko's tests and examples use, recorded as stubs.

Names, attributes and providers follow the prelude at the snapshot named in
tests/buck2/CONTRACT.md; the bodies are the smallest that do the same job. The contract
(tests/buck2_contract) makes every exported name here a global of BUCK files, as Buck2
does with the prelude's `native` rules.
"""

load("@rules_ko//starlark/testing:go_build.bzl", "GO_BUILD_SCRIPT")

def _constraint_setting_impl(ctx: AnalysisContext) -> list[Provider]:
    return [DefaultInfo(), ConstraintSettingInfo(label = ctx.label.raw_target())]

constraint_setting = rule(
    impl = _constraint_setting_impl,
    attrs = {},
    doc = "prelude//configurations/rules.bzl constraint_setting.",
)

def _constraint_value_impl(ctx: AnalysisContext) -> list[Provider]:
    setting = ctx.attrs.constraint_setting[ConstraintSettingInfo]
    return [DefaultInfo(), ConstraintValueInfo(setting = setting, label = ctx.label.raw_target())]

constraint_value = rule(
    impl = _constraint_value_impl,
    attrs = {"constraint_setting": attrs.configuration_label()},
    doc = "prelude//configurations/rules.bzl constraint_value.",
)

def _platform_impl(ctx: AnalysisContext) -> list[Provider]:
    constraints = {}
    for dep in ctx.attrs.constraint_values:
        value = dep[ConstraintValueInfo]
        constraints[value.setting.label] = value
    return [
        DefaultInfo(),
        PlatformInfo(
            label = str(ctx.label.raw_target()),
            configuration = ConfigurationInfo(constraints = constraints, values = {}),
        ),
    ]

platform = rule(
    impl = _platform_impl,
    attrs = {"constraint_values": attrs.list(attrs.configuration_label(), default = [])},
    doc = "prelude//configurations/rules.bzl platform.",
)

def _export_file_impl(ctx: AnalysisContext) -> list[Provider]:
    return [DefaultInfo(default_output = ctx.attrs.src)]

export_file = rule(
    impl = _export_file_impl,
    attrs = {"src": attrs.source()},
    doc = "prelude export_file (mode reference): DefaultInfo only.",
)

def _alias_impl(ctx: AnalysisContext) -> list[Provider]:
    return ctx.attrs.actual.providers

alias = rule(
    impl = _alias_impl,
    attrs = {"actual": attrs.dep()},
    doc = "prelude alias: the providers of `actual`.",
)

def _http_file_impl(ctx: AnalysisContext) -> list[Provider]:
    out = ctx.actions.declare_output(ctx.label.name)
    ctx.actions.download_file(out.as_output(), ctx.attrs.urls[0], sha256 = ctx.attrs.sha256, is_executable = ctx.attrs.executable)
    providers = [DefaultInfo(default_output = out)]
    if ctx.attrs.executable:
        providers.append(RunInfo(args = cmd_args(out)))
    return providers

http_file = rule(
    impl = _http_file_impl,
    attrs = {
        "urls": attrs.list(attrs.string()),
        "sha256": attrs.string(),
        "executable": attrs.bool(default = False),
    },
    doc = "prelude http_file: download_file, and RunInfo([output]) when executable.",
)

GoToolchainInfo = provider(fields = {
    "env_go_os": provider_field(str),
    "env_go_arch": provider_field(str),
    "env_go_arm": provider_field(str, default = ""),
})

def _go_binary_impl(ctx: AnalysisContext) -> list[Provider]:
    go = ctx.attrs._go_toolchain[GoToolchainInfo]
    out = ctx.actions.declare_output(ctx.label.name)
    ctx.actions.run(
        cmd_args(
            "bash",
            "-c",
            GO_BUILD_SCRIPT,
            "--",
            out.as_output(),
            ctx.attrs.package_name or ctx.label.name,
            go.env_go_os,
            go.env_go_arch,
            go.env_go_arm,
            ctx.attrs.srcs,
        ),
        category = "go_build",
    )
    return [DefaultInfo(default_output = out), RunInfo(args = cmd_args(out))]

go_binary = rule(
    impl = _go_binary_impl,
    attrs = {
        "srcs": attrs.list(attrs.source()),
        "package_name": attrs.option(attrs.string(), default = None),
        "_go_toolchain": attrs.default_only(attrs.toolchain_dep(default = "toolchains//:go", providers = [GoToolchainInfo])),
    },
    doc = "prelude//go:go_binary.bzl go_binary: DefaultInfo(default_output = bin) and RunInfo.",
)

def _go_toolchain_impl(ctx: AnalysisContext) -> list[Provider]:
    return [DefaultInfo(), GoToolchainInfo(env_go_os = ctx.attrs.env_go_os, env_go_arch = ctx.attrs.env_go_arch, env_go_arm = ctx.attrs.env_go_arm)]

go_toolchain = rule(
    impl = _go_toolchain_impl,
    attrs = {
        "env_go_os": attrs.string(default = "linux"),
        "env_go_arch": attrs.string(),
        "env_go_arm": attrs.string(default = ""),
    },
    is_toolchain_rule = True,
    doc = "prelude go_toolchain, reduced to the target OS/arch (a select() on the CPU constraint cross-compiles).",
)
