"""ko_push: `bazel run` pushes an image or index with `rko push`; ko_push_all pushes
several ko_push targets' images in one `rko push` run.

The push manifest (repository, tags, every blob and where its bytes are) is made at build
time by the KoPushManifest action, so a bad repository or tag fails the build, and the run
step only moves bytes: blobs the registry has are skipped, base layers are mounted or
streamed from the base's registry, and tags go last.
"""

load("//starlark:ko.bzl", "NAMING_STRATEGIES", "check_one_of", "check_repository", "check_tag", "image_sources", "index_sources", "insecure_registries", "push_args", "push_manifest_args")
load(":args.bzl", "rko_action")
load(":outputs.bzl", "LAUNCHER_ATTRS", "launcher", "metadata_files", "rlocation", "runfile", "source_items", "stage")
load(":providers.bzl", "KoImageInfo", "KoIndexInfo", "KoPushInfo")
load(":stamp.bzl", "STAMP_ATTRS", "stamp_files")
load(":toolchain_type.bzl", "TOOLCHAIN_TYPE", "rko_tool")

def sources_of(target):
    """(sources, importpath) of a ko_image or ko_image_index target."""
    if KoIndexInfo in target:
        info = target[KoIndexInfo]
        return index_sources(info), info.importpath
    info = target[KoImageInfo]
    return image_sources(info), info.importpath

def _ko_push_impl(ctx):
    rule = "ko_push %s" % ctx.label
    rko = rko_tool(ctx)
    check_repository(rule, ctx.attr.repository)
    if ctx.attr.naming:
        check_one_of(rule, "naming", ctx.attr.naming, NAMING_STRATEGIES)
    for t in ctx.attr.remote_tags:
        check_tag(rule, "remote_tags", t)
    sources, importpath = sources_of(ctx.attr.image)
    staging = stage(ctx, sources, layer_blobs = not ctx.attr.lazy)
    manifest = ctx.actions.declare_file(ctx.label.name + ".json")
    stamps = stamp_files(ctx)
    rko_action(
        ctx,
        rko,
        push_manifest_args(
            source_items(sources),
            ctx.attr.repository,
            manifest,
            importpath = importpath,
            naming = ctx.attr.naming,
            tags = ctx.attr.remote_tags,
            tag_files = ctx.files.tag_file,
            stamp_files = stamps,
            path_maps = staging.path_maps,
            attachments = sources.attachments,
        ),
        # Descriptors and paths only: the layers reach `bazel run` as runfiles.
        inputs = depset(ctx.files.tag_file + stamps, transitive = [metadata_files(sources)]),
        outputs = [manifest],
        mnemonic = "KoPushManifest",
        progress_message = "KoPushManifest %s" % ctx.label,
    )
    regs = insecure_registries(sources)
    script = launcher(ctx, rko, push_args(runfile(rlocation(ctx, manifest.short_path)), regs))
    runfiles = ctx.runfiles(files = [rko, manifest]).merge(staging.runfiles)
    return [
        DefaultInfo(executable = script, files = depset([manifest]), runfiles = runfiles),
        KoPushInfo(manifest = manifest, importpath = importpath, insecure_registries = regs),
    ]

def push_all_run(ctx, rko, pushes, then_print = None):
    """The launcher and runfiles of one `rko push` of every ko_push in pushes (targets);
    then_print: a File rko prints after the push (ko_resolve's YAML).

    Each ko_push's runfiles hold its manifest and its blobs where the manifest says, so
    merging them keeps every manifest's relative paths right.
    """
    regs = []
    for p in pushes:
        for r in p[KoPushInfo].insecure_registries:
            if r not in regs:
                regs.append(r)
    manifests = [runfile(rlocation(ctx, p[KoPushInfo].manifest.short_path)) for p in pushes]
    printed = runfile(rlocation(ctx, then_print.short_path)) if then_print else None
    script = launcher(ctx, rko, push_args(manifests, regs, then_print = printed))
    runfiles = ctx.runfiles(files = [rko] + ([then_print] if then_print else []))
    for p in pushes:
        runfiles = runfiles.merge(p[DefaultInfo].default_runfiles)
    return script, runfiles

def _ko_push_all_impl(ctx):
    script, runfiles = push_all_run(ctx, rko_tool(ctx), ctx.attr.pushes)
    manifests = [p[KoPushInfo].manifest for p in ctx.attr.pushes]
    return [DefaultInfo(executable = script, files = depset(manifests), runfiles = runfiles)]

PUSH_ATTRS = dict(STAMP_ATTRS, **LAUNCHER_ATTRS)
PUSH_ATTRS.update({
    "image": attr.label(
        mandatory = True,
        providers = [[KoImageInfo], [KoIndexInfo]],
        doc = "A ko_image or ko_image_index.",
    ),
    "repository": attr.string(
        doc = "HOST[:PORT]/REPOSITORY to push to; with naming set, the prefix ko calls KO_DOCKER_REPO. `bazel run ... -- --repository R` overrides it.",
    ),
    "naming": attr.string(
        doc = "Empty: push to repository as given. Else ko's naming strategy for the image name under repository: " + ", ".join(NAMING_STRATEGIES) + ".",
    ),
    "remote_tags": attr.string_list(
        doc = "Tags to push after the image. {KEY} is replaced from the workspace status when stamped (e.g. \"{STABLE_GIT_COMMIT}\").",
    ),
    "tag_file": attr.label(
        allow_single_file = True,
        doc = "A file of tags, one per line (e.g. made by a genrule).",
    ),
    "lazy": attr.bool(
        default = False,
        doc = "Leave the layers rules_ko made out of the runfiles: `bazel run` then downloads only metadata (under --remote_download_minimal, no layer bytes), and rko push streams the layers the registry lacks from the remote cache, given as `-- --remote-cache URL` (Bazel's HTTP cache URL; `--remote-header NAME=VALUE` for its credentials) or $RKO_REMOTE_CACHE.",
    ),
})

ko_push = rule(
    implementation = _ko_push_impl,
    doc = "`bazel run` pushes the image by digest, then its tags. Extra arguments go to `rko push` (--repository, --insecure-registry, --ca-file, --image-refs FILE, --jobs).",
    attrs = PUSH_ATTRS,
    executable = True,
    toolchains = [TOOLCHAIN_TYPE],
)

ko_push_all = rule(
    implementation = _ko_push_all_impl,
    doc = "`bazel run` pushes every listed ko_push's image in one `rko push` run: one connection pool, blobs the images share uploaded once per registry and mounted into the other repositories, each image's tags after its manifests. Extra arguments go to `rko push` (--insecure-registry, --ca-file, --image-refs FILE, --jobs).",
    attrs = dict(LAUNCHER_ATTRS, pushes = attr.label_list(
        mandatory = True,
        allow_empty = False,
        providers = [KoPushInfo],
        doc = "ko_push targets, pushed in this order.",
    )),
    executable = True,
    toolchains = [TOOLCHAIN_TYPE],
)
