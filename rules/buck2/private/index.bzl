"""ko_image_index for Buck2: one ko_image per platform, through a split transition.

The transition (platform.bzl) sets each configuration's OS and CPU constraints, so the Go
binary is built once per platform (the Go toolchain selects GOARCH on the CPU constraint)
and each ko_image reads its platform from the configuration.
"""

load("//starlark:ko.bzl", "PLATFORMS", "check_index_image", "index_args", "index_sources")
load(":args.bzl", "run_rko")
load(":image.bzl", "rule_name")
load(":outputs.bzl", "image_sub_targets")
load(":platform.bzl", "platforms_split")
load(":providers.bzl", "KoImageInfo", "KoIndexInfo")
load(":toolchain.bzl", "RKO_TOOLCHAIN_ATTR")

def _ko_image_index_impl(ctx: AnalysisContext) -> list[Provider]:
    rule = rule_name("ko_image_index", ctx)
    images = []
    for p in ctx.attrs.platforms:
        info = ctx.attrs.image[p][KoImageInfo]
        check_index_image(rule, p, info.platform)
        images.append(info)
    index = ctx.actions.declare_output(ctx.label.name + ".index.json")
    descriptor = ctx.actions.declare_output(ctx.label.name + ".descriptor.json")
    digest = ctx.actions.declare_output(ctx.label.name + ".digest")
    run_rko(ctx, index_args([i.descriptor for i in images], index, descriptor, digest), "ko_index")
    info = KoIndexInfo(
        importpath = images[0].importpath,
        descriptor = descriptor,
        index = index,
        digest = digest,
        images = images,
    )
    return [
        info,
        DefaultInfo(
            default_output = digest,
            other_outputs = [index],
            sub_targets = image_sub_targets(ctx, index_sources(info), {
                "descriptor": descriptor,
                "digest": digest,
                "index": index,
            }),
        ),
    ]

ko_image_index = rule(
    impl = _ko_image_index_impl,
    doc = "A multi-platform image index: `image` built once for each of `platforms`. Default output: the digest; sub-targets [tarball], [layout], [digest], [index], [descriptor].",
    attrs = {
        "image": attrs.split_transition_dep(cfg = platforms_split, providers = [KoImageInfo], doc = "A ko_image (with platform unset); built once per platform."),
        "platforms": attrs.list(attrs.string(), doc = "OCI platforms, os/arch[/variant]: " + ", ".join(sorted(PLATFORMS.keys())) + "."),
        "_rko": RKO_TOOLCHAIN_ATTR,
    },
)
