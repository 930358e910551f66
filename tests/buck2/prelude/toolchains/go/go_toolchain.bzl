"""prelude//toolchains/go:go_toolchain.bzl: go_toolchain and go_distr with the prelude's
attribute names and kinds (those the Go tools' exec deps and flags add are left out: they
all have defaults)."""

load("@prelude//go:toolchain.bzl", "GoDistrInfo", "GoToolchainInfo")

def _go_toolchain_impl(ctx: AnalysisContext) -> list[Provider]:
    ctx.attrs.go_distr[GoDistrInfo]
    return [
        DefaultInfo(),
        GoToolchainInfo(env_go_os = ctx.attrs.env_go_os, env_go_arch = ctx.attrs.env_go_arch, env_go_arm = ctx.attrs.env_go_arm),
    ]

go_toolchain = rule(
    impl = _go_toolchain_impl,
    is_toolchain_rule = True,
    attrs = {
        "build_tags": attrs.list(attrs.string(), default = []),
        "env_go_arch": attrs.string(),
        "env_go_arm": attrs.option(attrs.string(), default = None),
        "env_go_os": attrs.string(),
        "go_distr": attrs.exec_dep(providers = [GoDistrInfo]),
    },
)

def _go_distr_impl(ctx: AnalysisContext) -> list[Provider]:
    return [DefaultInfo(), GoDistrInfo(go_root = ctx.attrs.go_root, version = ctx.attrs.version)]

go_distr = rule(
    impl = _go_distr_impl,
    attrs = {
        "go_os_arch": attrs.tuple(attrs.string(), attrs.string()),
        "go_root": attrs.source(allow_directory = True),
        "multiplatform": attrs.bool(default = False),
        "version": attrs.string(),
    },
)
