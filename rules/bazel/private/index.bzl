"""ko_image_index: one ko_image per platform, built through a split transition, in one index.

The transition sets --platforms to @rules_ko//platforms:<os>_<arch>, so the Go binary is
built once per platform (rules_go picks its toolchain from the platform) and each ko_image
reads its platform from the target configuration.
"""

load("//starlark:ko.bzl", "PLATFORMS", "check_index_image", "check_index_platforms", "index_args", "index_sources", "platform_key")
load(":args.bzl", "render")
load(":outputs.bzl", "output_group_actions")
load(":providers.bzl", "KoImageInfo", "KoIndexInfo")
load(":toolchain_type.bzl", "TOOLCHAIN_KWARGS", "TOOLCHAIN_TYPE", "rko_tool")

def _platforms_transition_impl(settings, attr):
    out = {}
    for p in check_index_platforms("ko_image_index", attr.platforms):
        out[p] = {"//command_line_option:platforms": str(Label("//platforms:" + platform_key(p)))}
    return out

_platforms_transition = transition(
    implementation = _platforms_transition_impl,
    inputs = [],
    outputs = ["//command_line_option:platforms"],
)

def _ko_image_index_impl(ctx):
    rule = "ko_image_index %s" % ctx.label
    rko = rko_tool(ctx)
    images = []
    for p in ctx.attr.platforms:
        info = ctx.split_attr.image[p][KoImageInfo]
        check_index_image(rule, p, info.platform)
        images.append(info)
    index = ctx.actions.declare_file(ctx.label.name + ".index.json")
    descriptor = ctx.actions.declare_file(ctx.label.name + ".descriptor.json")
    digest = ctx.actions.declare_file(ctx.label.name + ".digest")
    ctx.actions.run(
        executable = rko,
        arguments = [render(ctx, index_args([i.descriptor for i in images], index, descriptor, digest))],
        inputs = [i.descriptor for i in images],
        outputs = [index, descriptor, digest],
        mnemonic = "KoIndex",
        progress_message = "KoIndex %s (%s)" % (ctx.label, ", ".join(ctx.attr.platforms)),
        **TOOLCHAIN_KWARGS
    )
    info = KoIndexInfo(
        importpath = images[0].importpath,
        descriptor = descriptor,
        index = index,
        digest = digest,
        images = images,
    )
    sources = index_sources(info)
    return [
        info,
        DefaultInfo(files = depset([index, digest])),
        OutputGroupInfo(**output_group_actions(ctx, rko, sources)),
    ]

ko_image_index = rule(
    implementation = _ko_image_index_impl,
    doc = "A multi-platform image index: `image` built once for each of `platforms`. Output groups `tarball` and `layout` as ko_image.",
    attrs = {
        "image": attr.label(
            mandatory = True,
            cfg = _platforms_transition,
            providers = [KoImageInfo],
            doc = "A ko_image (with platform unset); built once per platform.",
        ),
        "platforms": attr.string_list(
            mandatory = True,
            doc = "OCI platforms, os/arch[/variant]: " + ", ".join(sorted(PLATFORMS.keys())) + ".",
        ),
        "_allowlist_function_transition": attr.label(
            default = "@bazel_tools//tools/allowlists/function_transition_allowlist",
        ),
    },
    toolchains = [TOOLCHAIN_TYPE],
)
