"""prelude//toolchains/go:system_go_bootstrap_toolchain.bzl (builds the prelude's Go tools)."""

def _impl(ctx: AnalysisContext) -> list[Provider]:
    return [DefaultInfo()]

system_go_bootstrap_toolchain = rule(impl = _impl, attrs = {}, is_toolchain_rule = True)
