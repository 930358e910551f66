"""Whether the build is stamped (--stamp), readable by rules as a provider."""

KoStampInfo = provider(
    doc = "Whether --stamp is on.",
    fields = {"stamp": "bool: the build runs with --stamp"},
)

def _ko_stamp_setting_impl(ctx):
    return [KoStampInfo(stamp = ctx.attr.value)]

ko_stamp_setting = rule(
    implementation = _ko_stamp_setting_impl,
    doc = "Carries a select() on --stamp into rules as KoStampInfo.",
    attrs = {"value": attr.bool(doc = "The selected value.")},
)

STAMP_ATTRS = {
    "stamp": attr.int(
        default = -1,
        values = [-1, 0, 1],
        doc = "1: expand {KEY} in tags from the workspace status; 0: never; -1: when built with --stamp.",
    ),
    "_stamp_setting": attr.label(default = Label("//rules/bazel:stamp"), providers = [KoStampInfo]),
}

def stamp_files(ctx):
    """The workspace status files when this target is stamped, else []."""
    stamp = ctx.attr.stamp == 1 or (ctx.attr.stamp == -1 and ctx.attr._stamp_setting[KoStampInfo].stamp)
    return [ctx.info_file, ctx.version_file] if stamp else []
