"""ko_image_index: one ko_image per platform, built through a split transition, in one index.

`platforms` are platform() targets: the user's own (with whatever constraints they carry),
or @rules_ko//platforms:<os>_<arch>, which the ko_image_index macro in defs.bzl substitutes
for "os/arch" strings. The transition sets --platforms to each, so the Go binary is built
once per platform (rules_go picks its toolchain from the platform; selects on the user's
constraints see them) and each ko_image derives its OCI platform from the platform's
@platforms//os and @platforms//cpu constraint values (platform.bzl).
"""

load("//starlark:ko.bzl", "PLATFORMS", "attr_error", "check_index_image", "index_args", "index_sources", "platform_key")
load(":args.bzl", "rko_action")
load(":outputs.bzl", "output_group_actions")
load(":providers.bzl", "KoImageInfo", "KoIndexInfo")
load(":toolchain_type.bzl", "TOOLCHAIN_TYPE", "rko_tool")

def _platforms_transition_impl(settings, attr):
    # Split keys are strings: each platform's label, as _ko_image_index_impl spells it.
    return {str(p): {"//command_line_option:platforms": str(p)} for p in attr.platforms}

# rules_ko's own platforms (what "os/arch" strings become) -> the OCI platform they mean.
_OWN_PLATFORMS = {str(Label("//platforms:" + platform_key(p))): p for p in PLATFORMS.keys()}

_platforms_transition = transition(
    implementation = _platforms_transition_impl,
    inputs = [],
    outputs = ["//command_line_option:platforms"],
)

def _ko_image_index_impl(ctx):
    rule = "ko_image_index %s" % ctx.label
    rko = rko_tool(ctx)
    images = []
    seen = {}
    for p in ctx.attr.platforms:
        info = ctx.split_attr.image[str(p.label)][KoImageInfo]
        if str(p.label) in _OWN_PLATFORMS:
            check_index_image(rule, _OWN_PLATFORMS[str(p.label)], info.platform)
        if info.platform in seen:
            fail(attr_error(
                rule,
                "platforms",
                "platforms that make one image each for different OCI platforms",
                "%s and %s both giving %s" % (seen[info.platform], p.label, info.platform),
                "Drop one of them; if %s sets its platform attribute, leave it unset so each platform's constraints set it" % ctx.attr.image[0].label,
            ))
        seen[info.platform] = p.label
        images.append(info)
    index = ctx.actions.declare_file(ctx.label.name + ".index.json")
    descriptor = ctx.actions.declare_file(ctx.label.name + ".descriptor.json")
    digest = ctx.actions.declare_file(ctx.label.name + ".digest")
    rko_action(
        ctx,
        rko,
        index_args([i.descriptor for i in images], index, descriptor, digest),
        inputs = [i.descriptor for i in images],
        outputs = [index, descriptor, digest],
        mnemonic = "KoIndex",
        progress_message = "KoIndex %s (%s)" % (ctx.label, ", ".join([i.platform for i in images])),
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
        "platforms": attr.label_list(
            mandatory = True,
            providers = [platform_common.PlatformInfo],
            doc = "platform() targets, one image each, in index order. Each needs an @platforms//os and @platforms//cpu constraint value rules_ko maps to an OCI platform (" + ", ".join(sorted(PLATFORMS.keys())) + "). The ko_image_index macro also takes \"os/arch\" strings.",
        ),
        "_allowlist_function_transition": attr.label(
            default = "@bazel_tools//tools/allowlists/function_transition_allowlist",
        ),
    },
    toolchains = [TOOLCHAIN_TYPE],
)
