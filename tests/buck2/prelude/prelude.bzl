"""The part of Buck2's prelude that rules_ko's tests and examples use, recorded as stubs.

Names, attributes and providers follow the prelude at the snapshot named in
tests/buck2/CONTRACT.md; the bodies are the smallest that do the same job. The contract
(tests/buck2_contract) makes every exported name here a global of BUCK files, as Buck2
does with the prelude's `native` rules.
"""

load("@prelude//go:toolchain.bzl", "GoToolchainInfo")
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
    value = ConstraintValueInfo(setting = setting, label = ctx.label.raw_target())
    return [
        DefaultInfo(),
        value,
        # A constraint value is also a select() key.
        ConfigurationInfo(constraints = {setting.label: value}, values = {}),
    ]

constraint_value = rule(
    impl = _constraint_value_impl,
    attrs = {"constraint_setting": attrs.configuration_label()},
    doc = "prelude//configurations/rules.bzl constraint_value.",
)

def _constraint_impl(ctx: AnalysisContext) -> list[Provider]:
    if ctx.attrs.default not in ctx.attrs.values:
        fail("default value '{}' must be one of the declared values: {}".format(ctx.attrs.default, ctx.attrs.values))
    main = ctx.label.raw_target()
    setting = ConstraintSettingInfo(label = main, default = main.with_sub_target(ctx.attrs.default))
    subs = {}
    for v in ctx.attrs.values:
        value = ConstraintValueInfo(setting = setting, label = main.with_sub_target(v))
        subs[v] = [DefaultInfo(), value, ConfigurationInfo(constraints = {main: value}, values = {})]
    return [DefaultInfo(sub_targets = subs), setting]

constraint = rule(
    impl = _constraint_impl,
    attrs = {
        "values": attrs.list(attrs.string()),
        "default": attrs.string(),
    },
    doc = "prelude//configurations/rules.bzl constraint: one setting, each value a sub-target [VALUE], unset meaning `default`.",
)

def _configuration_alias_impl(ctx: AnalysisContext) -> list[Provider]:
    return ctx.attrs.actual.providers

configuration_alias = rule(
    impl = _configuration_alias_impl,
    attrs = {"actual": attrs.configuration_label()},
    doc = "prelude configuration_alias: the providers of `actual` (e.g. :cpu[x86_64]).",
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

def _http_archive_impl(ctx: AnalysisContext) -> list[Provider]:
    archive = ctx.actions.declare_output("archive")
    ctx.actions.download_file(archive.as_output(), ctx.attrs.urls[0], sha256 = ctx.attrs.sha256)
    out = ctx.actions.declare_output(ctx.label.name, dir = True)
    ctx.actions.run(
        cmd_args("bash", "-c", "mkdir -p \"$1\" && tar -xf \"$2\" -C \"$1\" --strip-components=\"$3\"", "--", out.as_output(), archive, str(len(ctx.attrs.strip_prefix.split("/")) if ctx.attrs.strip_prefix else 0)),
        category = "http_archive",
    )
    return [DefaultInfo(default_output = out)]

http_archive = rule(
    impl = _http_archive_impl,
    attrs = {
        "urls": attrs.list(attrs.string()),
        "sha256": attrs.string(),
        "strip_prefix": attrs.option(attrs.string(), default = None),
    },
    doc = "prelude http_archive: a directory of the unpacked archive.",
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
            go.env_go_arm or "",
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
        "_cxx_toolchain": attrs.default_only(attrs.toolchain_dep(default = "toolchains//:cxx")),
        "_go_toolchain": attrs.default_only(attrs.toolchain_dep(default = "toolchains//:go", providers = [GoToolchainInfo])),
    },
    doc = "prelude//go:go_binary.bzl go_binary: DefaultInfo(default_output = bin) and RunInfo.",
)
