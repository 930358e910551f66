"""The OCI platform of the target configuration, from its constraint values."""

load("//starlark:ko.bzl", "PLATFORMS")

def _constraint_attrs():
    attrs = {}
    for c in PLATFORMS.values():
        attrs["_os_" + c["os"]] = attr.label(default = "@platforms//os:" + c["os"])
        attrs["_cpu_" + c["cpu"]] = attr.label(default = "@platforms//cpu:" + c["cpu"])
    return attrs

PLATFORM_ATTRS = _constraint_attrs()

def _has(ctx, name):
    return ctx.target_platform_has_constraint(getattr(ctx.attr, name)[platform_common.ConstraintValueInfo])

def target_platform(ctx):
    """The os/arch of the target platform, or None when rules_ko knows no such platform."""
    for p, c in PLATFORMS.items():
        if _has(ctx, "_os_" + c["os"]) and _has(ctx, "_cpu_" + c["cpu"]):
            return p
    return None
