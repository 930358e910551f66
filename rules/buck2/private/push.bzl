"""ko_push and ko_load for Buck2: `buck2 run` pushes an image or index, or loads it.

The push manifest (repository, tags, every blob and where its bytes are) is made at build
time by the ko_push_manifest action, which reads only metadata, so a bad repository or tag
fails the build. It records blob paths relative to itself, so `buck2 run` (which runs in
the user's directory, with artifacts as absolute paths) can push from anywhere. The blobs
are hidden inputs of the RunInfo: Buck2 builds and materializes them before running.
"""

load(
    "//starlark:ko.bzl",
    "NAMING_STRATEGIES",
    "attr_error",
    "check_one_of",
    "check_repo_tags",
    "check_repository",
    "check_tag",
    "image_sources",
    "index_sources",
    "insecure_registries",
    "load_args",
    "push_args",
    "push_manifest_args",
)
load(":args.bzl", "render", "rko_run_info", "run_rko")
load(":image.bzl", "rule_name")
load(":outputs.bzl", "blob_artifacts", "metadata_artifacts", "source_items")
load(":providers.bzl", "KoImageInfo", "KoIndexInfo")
load(":toolchain.bzl", "RKO_TOOLCHAIN_ATTR")

def sources_of(rule: str, dep: Dependency) -> (struct, str):
    """(sources, importpath) of a ko_image or ko_image_index."""
    index = dep.get(KoIndexInfo)
    if index:
        return index_sources(index), index.importpath
    image = dep.get(KoImageInfo)
    if image:
        return image_sources(image), image.importpath
    fail(attr_error(rule, "image", "a ko_image or ko_image_index", str(dep.label.raw_target())))

def _ko_push_impl(ctx: AnalysisContext) -> list[Provider]:
    rule = rule_name("ko_push", ctx)
    check_repository(rule, ctx.attrs.repository)
    if ctx.attrs.naming:
        check_one_of(rule, "naming", ctx.attrs.naming, NAMING_STRATEGIES)
    for t in ctx.attrs.remote_tags:
        check_tag(rule, "remote_tags", t)
    sources, importpath = sources_of(rule, ctx.attrs.image)
    tag_files = [ctx.attrs.tag_file] if ctx.attrs.tag_file else []
    manifest = ctx.actions.declare_output(ctx.label.name + ".json")

    # Descriptors and the base's metadata only: the layers reach `buck2 run` as hidden
    # inputs of the RunInfo below.
    run_rko(
        ctx,
        push_manifest_args(
            source_items(sources, with_blobs = False),
            ctx.attrs.repository,
            manifest,
            importpath = importpath,
            naming = ctx.attrs.naming,
            tags = ctx.attrs.remote_tags,
            tag_files = tag_files,
        ),
        "ko_push_manifest",
        hidden = metadata_artifacts(sources) + tag_files,
        paths_only = True,
    )
    run = cmd_args(
        rko_run_info(ctx),
        render(push_args(manifest, insecure_registries(sources))),
        hidden = blob_artifacts(sources),
    )
    return [DefaultInfo(default_output = manifest), RunInfo(args = run)]

ko_push = rule(
    impl = _ko_push_impl,
    doc = "`buck2 run` pushes the image by digest, then its tags. Arguments after `--` go to `rko push` (--repository, --insecure-registry, --ca-file, --image-refs FILE, --jobs).",
    attrs = {
        "image": attrs.dep(doc = "A ko_image or ko_image_index."),
        "repository": attrs.string(default = "", doc = "HOST[:PORT]/REPOSITORY to push to; with naming set, the prefix ko calls KO_DOCKER_REPO. `buck2 run ... -- --repository R` overrides it."),
        "naming": attrs.string(default = "", doc = "Empty: push to repository as given. Else ko's naming strategy for the image name under repository: " + ", ".join(NAMING_STRATEGIES) + "."),
        "remote_tags": attrs.list(attrs.string(), default = [], doc = "Tags to push after the image."),
        "tag_file": attrs.option(attrs.source(), default = None, doc = "A file of tags, one per line (e.g. made by a genrule)."),
        "_rko": RKO_TOOLCHAIN_ATTR,
    },
)

def _ko_load_impl(ctx: AnalysisContext) -> list[Provider]:
    rule = rule_name("ko_load", ctx)
    check_repo_tags(rule, ctx.attrs.repo_tags)
    sources, _ = sources_of(rule, ctx.attrs.image)
    items = load_args(source_items(sources, with_blobs = True), ctx.attrs.repo_tags, insecure_registries(sources))
    return [DefaultInfo(), RunInfo(args = cmd_args(rko_run_info(ctx), render(items)))]

ko_load = rule(
    impl = _ko_load_impl,
    doc = "`buck2 run` streams the image into docker (or podman) with repo_tags. Arguments after `--` go to `rko load` (--tool podman, --platform os/arch for an index).",
    attrs = {
        "image": attrs.dep(doc = "A ko_image or ko_image_index."),
        "repo_tags": attrs.list(attrs.string(), default = [], doc = "NAME:TAG names for the loaded image."),
        "_rko": RKO_TOOLCHAIN_ATTR,
    },
)
