"""The rko toolchain as the rules use it."""

TOOLCHAIN_TYPE = str(Label("//rules/bazel:toolchain_type"))

# Bazel 6+ takes the toolchain an action's tool comes from (`toolchain =`), which automatic
# exec groups require; Bazel 4 rejects the parameter. native.module_name exists from Bazel 6.
TOOLCHAIN_KWARGS = {"toolchain": TOOLCHAIN_TYPE} if hasattr(native, "module_name") else {}

def rko_tool(ctx):
    """The rko executable of the resolved toolchain."""
    return ctx.toolchains[TOOLCHAIN_TYPE].rko
