"""prelude//toolchains:cxx.bzl system_cxx_toolchain (the prelude's go_binary requires
toolchains//:cxx even without cgo)."""

def _impl(ctx: AnalysisContext) -> list[Provider]:
    return [DefaultInfo()]

system_cxx_toolchain = rule(impl = _impl, attrs = {}, is_toolchain_rule = True)
