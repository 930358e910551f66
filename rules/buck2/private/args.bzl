"""Renders starlark/ko.bzl argument items as Buck2 cmd_args, and runs rko actions."""

load("//starlark:ko.bzl", "is_each", "is_join", "is_out", "join")
load(":providers.bzl", "RkoToolchainInfo")

def render(items: list, paths_only: bool = False) -> cmd_args:
    """cmd_args for ko.bzl's items.

    paths_only: input artifacts are named on the command line but are not inputs of the
    action (`rko push-manifest` records where blobs are without reading them).
    """
    parts = []
    for item in _expand_each(items):
        if is_out(item):
            parts.append(item.ko_out.as_output())
        elif is_join(item):
            parts.append(cmd_args(item.ko_join, delimiter = item.ko_sep, ignore_artifacts = paths_only))
        elif paths_only and type(item) != "string":
            parts.append(cmd_args(item, ignore_artifacts = True))
        else:
            parts.append(item)
    return cmd_args(parts)

def _expand_each(items: list) -> list:
    """ko.bzl's each() items as the flag and value items they stand for."""
    expanded = []
    for item in items:
        if is_each(item):
            for v in item.ko_each:
                expanded.append(item.ko_flag)
                expanded.append(join(v, item.ko_sep) if item.ko_sep else v)
        else:
            expanded.append(item)
    return expanded

def rko_run_info(ctx: AnalysisContext) -> RunInfo:
    return ctx.attrs._rko[RkoToolchainInfo].rko

def run_rko(
        ctx: AnalysisContext,
        items: list,
        category: str,
        identifier: str | None = None,
        hidden: list = [],
        paths_only: bool = False,
        local_only: bool = False):
    """One rko action. local_only actions reach a registry: Buck2 runs them here, and
    uploads their results to the cache since they are pinned by digest.

    RKO_FSYNC=0: rko's flush of each output to disk before its rename is for people running
    it by hand; Buck2 hashes every output when the action ends (as Bazel does; see
    rules/bazel/private/args.bzl)."""
    ctx.actions.run(
        cmd_args(rko_run_info(ctx), render(items, paths_only), hidden = hidden),
        env = {"RKO_FSYNC": "0"},
        category = category,
        identifier = identifier,
        local_only = local_only,
        allow_cache_upload = True if local_only else None,
    )
