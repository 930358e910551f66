"""ko_push, ko_push_all and ko_load for Buck2: `buck2 run` pushes an image or index (or
several in one `rko push` run), or loads it.

The push manifest (repository, tags, every blob and where its bytes are) is made at build
time by the ko_push_manifest action, which reads only metadata, so a bad repository or tag
fails the build. It records blob paths relative to itself, so `buck2 run` (which runs in
the user's directory, with artifacts as absolute paths) can push from anywhere. The blobs
are hidden inputs of the RunInfo: Buck2 builds and materializes them before running.
KoPushInfo hands the manifest and those blobs on to ko_push_all and ko_resolve.
"""

load(
    "//starlark:ko.bzl",
    "NAMING_STRATEGIES",
    "attr_error",
    "check_not_empty",
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
load(":providers.bzl", "KoImageInfo", "KoIndexInfo", "KoPushInfo")
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
            attachments = sources.attachments,
        ),
        "ko_push_manifest",
        hidden = metadata_artifacts(sources) + tag_files,
        paths_only = True,
    )
    info = KoPushInfo(
        manifest = manifest,
        importpath = importpath,
        insecure_registries = insecure_registries(sources),
        # A lazy push leaves the layers rules_ko made out: `buck2 run` then materializes
        # only metadata, and rko streams the layers the registry lacks from the cache.
        blobs = metadata_artifacts(sources) if ctx.attrs.lazy else blob_artifacts(sources),
    )
    return [DefaultInfo(default_output = manifest), push_run_info(ctx, [info]), info]

def push_run_info(ctx: AnalysisContext, pushes: list[KoPushInfo], then_print: Artifact | None = None) -> RunInfo:
    """One `rko push` of every push's manifest, in order; then_print: a file rko prints
    after the push (ko_resolve's YAML). Every push's blobs are hidden inputs."""
    regs = []
    blobs = []
    for p in pushes:
        for r in p.insecure_registries:
            if r not in regs:
                regs.append(r)
        blobs.extend(p.blobs)
    items = push_args([p.manifest for p in pushes], regs, then_print = then_print)
    return RunInfo(args = cmd_args(rko_run_info(ctx), render(items), hidden = blobs))

ko_push = rule(
    impl = _ko_push_impl,
    doc = "`buck2 run` pushes the image by digest, then its tags. Arguments after `--` go to `rko push` (--repository, --insecure-registry, --ca-file, --image-refs FILE, --jobs).",
    attrs = {
        "image": attrs.dep(doc = "A ko_image or ko_image_index."),
        "repository": attrs.string(default = "", doc = "HOST[:PORT]/REPOSITORY to push to; with naming set, the prefix ko calls KO_DOCKER_REPO. `buck2 run ... -- --repository R` overrides it."),
        "naming": attrs.string(default = "", doc = "Empty: push to repository as given. Else ko's naming strategy for the image name under repository: " + ", ".join(NAMING_STRATEGIES) + "."),
        "remote_tags": attrs.list(attrs.string(), default = [], doc = "Tags to push after the image."),
        "tag_file": attrs.option(attrs.source(), default = None, doc = "A file of tags, one per line (e.g. made by a genrule)."),
        "lazy": attrs.bool(default = False, doc = "Leave the layers rules_ko made out of the run's inputs: `buck2 run` then materializes only metadata (with deferred materialization on remote execution, no layer bytes reach the machine), and rko push streams the layers the registry lacks from the cache holding them, given as `-- --remote-cache URL` (grpc:// or grpcs:// for a REAPI CAS such as Buck2's RE, http[s]:// for a Bazel HTTP cache; `--remote-header NAME=VALUE` for its credentials) or $RKO_REMOTE_CACHE."),
        "_rko": RKO_TOOLCHAIN_ATTR,
    },
)

def push_infos(rule: str, attr: str, deps: list[Dependency]) -> list[KoPushInfo]:
    """The KoPushInfo of each ko_push in deps (at least one)."""
    check_not_empty(rule, attr, deps, "one or more ko_push targets")
    return [d[KoPushInfo] for d in deps]

def _ko_push_all_impl(ctx: AnalysisContext) -> list[Provider]:
    pushes = push_infos(rule_name("ko_push_all", ctx), "pushes", ctx.attrs.pushes)
    return [DefaultInfo(default_outputs = [p.manifest for p in pushes]), push_run_info(ctx, pushes)]

ko_push_all = rule(
    impl = _ko_push_all_impl,
    doc = "`buck2 run` pushes every listed ko_push's image in one `rko push` run: one connection pool, blobs the images share uploaded once per registry and mounted into the other repositories, each image's tags after its manifests. Default outputs: the push manifests. Arguments after `--` go to `rko push` (--insecure-registry, --ca-file, --image-refs FILE, --jobs).",
    attrs = {
        "pushes": attrs.list(attrs.dep(providers = [KoPushInfo]), doc = "ko_push targets, pushed in this order."),
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
