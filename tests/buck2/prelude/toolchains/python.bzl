"""prelude//toolchains:python.bzl system_python_bootstrap_toolchain (runs the Go bootstrap
toolchain's go_wrapper)."""

def _impl(ctx: AnalysisContext) -> list[Provider]:
    return [DefaultInfo()]

system_python_bootstrap_toolchain = rule(impl = _impl, attrs = {}, is_toolchain_rule = True)
