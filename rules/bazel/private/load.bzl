"""ko_load: `bazel run` loads an image (or an index's platform) into docker or podman."""

load("//starlark:ko.bzl", "check_repo_tags", "insecure_registries", "load_args")
load(":outputs.bzl", "LAUNCHER_ATTRS", "launcher", "source_items", "stage")
load(":providers.bzl", "KoImageInfo", "KoIndexInfo")
load(":push.bzl", "sources_of")
load(":toolchain_type.bzl", "TOOLCHAIN_TYPE", "rko_tool")

def _ko_load_impl(ctx):
    rule = "ko_load %s" % ctx.label
    rko = rko_tool(ctx)
    check_repo_tags(rule, ctx.attr.repo_tags)
    sources, _ = sources_of(ctx.attr.image)
    staging = stage(ctx, sources)
    script = launcher(ctx, rko, load_args(source_items(sources, staging.staged, ctx), ctx.attr.repo_tags, insecure_registries(sources)))
    return [DefaultInfo(executable = script, runfiles = ctx.runfiles(files = [rko]).merge(staging.runfiles))]

ko_load = rule(
    implementation = _ko_load_impl,
    doc = "`bazel run` streams the image into docker (or podman) with repo_tags. Extra arguments go to `rko load` (--tool podman, --platform os/arch for an index).",
    attrs = dict(LAUNCHER_ATTRS, **{
        "image": attr.label(
            mandatory = True,
            providers = [[KoImageInfo], [KoIndexInfo]],
            doc = "A ko_image or ko_image_index.",
        ),
        "repo_tags": attr.string_list(doc = "NAME:TAG names for the loaded image."),
    }),
    executable = True,
    toolchains = [TOOLCHAIN_TYPE],
)
