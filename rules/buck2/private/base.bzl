"""Base images for Buck2: the built-in static and scratch bases, and ko_base (rko pull).

ko_base pulls at build time with a `ko_pull` action (Buck2 has no repository rules). The
pull is pinned by digest, so its output is the same everywhere: the action runs locally
(it needs the network) and its result is uploaded to the remote cache. By default only
manifests and configs are fetched; a push mounts or streams the base layers from their
registry. layers = "eager" adds a second pull with the layers, which only [tarball],
[layout] and ko_load use, so Buck2 fetches them only when one of those is built.

The pull's environment: Buck2 runs a local action with the environment of its daemon
(minus PYTHONPATH, PYTHONHOME, PYTHONSTARTUP, LD_LIBRARY_PATH and LD_PRELOAD), and the daemon
has the environment of the buck2 command that started it. So HTTPS_PROXY, NO_PROXY,
SSL_CERT_FILE, RKO_ETC_DIR, DOCKER_CONFIG and the rest reach rko when they were set at the
daemon's start; after changing one, `buck2 kill` so the next command starts a daemon with
it. They are not part of the action's key (the pull is pinned by digest): a pull that
already succeeded is not re-run.
"""

load("//starlark:ko.bzl", "check_mirrors", "check_one_of", "check_platform", "pull_args", "split_reference")
load(":args.bzl", "run_rko")
load(":providers.bzl", "KoBaseInfo")
load(":toolchain.bzl", "RKO_TOOLCHAIN_ATTR")

def _ko_builtin_base_impl(ctx: AnalysisContext) -> list[Provider]:
    check_one_of("ko_builtin_base %s" % ctx.label.raw_target(), "kind", ctx.attrs.kind, ["static", "scratch"])
    return [DefaultInfo(), KoBaseInfo(spec = ctx.attrs.kind)]

ko_builtin_base = rule(
    impl = _ko_builtin_base_impl,
    doc = "A base rko makes itself: `static` (CA certificates, nonroot user 65532, /tmp) or `scratch` (empty).",
    attrs = {
        "kind": attrs.string(doc = "static or scratch."),
    },
)

def _ko_base_impl(ctx: AnalysisContext) -> list[Provider]:
    rule = "ko_base %s" % ctx.label.raw_target()
    repository, digest = split_reference(rule, "image", ctx.attrs.image, ctx.attrs.digest)
    check_one_of(rule, "layers", ctx.attrs.layers, ["shallow", "eager"])
    check_mirrors(rule, ctx.attrs.mirrors)
    platforms = ctx.attrs.platforms or ["linux/amd64"]
    for p in platforms:
        check_platform(rule, "platforms", p)
    reference = repository + "@" + digest
    regs = ctx.attrs.insecure_registries
    mirrors = ctx.attrs.mirrors
    layout = ctx.actions.declare_output("layout", dir = True)
    run_rko(ctx, pull_args(reference, layout, platforms, False, regs, mirrors), "ko_pull", "metadata", local_only = True)
    blobs = None
    if ctx.attrs.layers == "eager":
        blobs = ctx.actions.declare_output("layout_with_layers", dir = True)
        run_rko(ctx, pull_args(reference, blobs, platforms, True, regs, mirrors), "ko_pull", "layers", local_only = True)
    return [
        DefaultInfo(default_output = layout),
        KoBaseInfo(
            spec = "",
            dir = layout,
            digest = digest,
            blobs_dir = blobs,
            reference = reference,
            insecure_registries = regs,
            platforms = platforms,
        ),
    ]

ko_base = rule(
    impl = _ko_base_impl,
    doc = "A base image pinned by digest, pulled by `rko pull` in a local action. Use it as base = \":NAME\".",
    attrs = {
        "image": attrs.string(doc = "HOST/REPO, or HOST/REPO@sha256:... (a tag alone is refused)."),
        "digest": attrs.string(default = "", doc = "sha256:... of the manifest or index (unless image has it)."),
        "platforms": attrs.list(attrs.string(), default = [], doc = "Platforms to fetch from an index (default linux/amd64)."),
        "layers": attrs.string(default = "shallow", doc = "\"shallow\": manifests and configs only; \"eager\": layers too, for offline [tarball], [layout] and loads."),
        "insecure_registries": attrs.list(attrs.string(), default = [], doc = "Registries (HOST[:PORT]) reached over plain HTTP or unverified TLS."),
        "mirrors": attrs.list(attrs.string(), default = [], doc = "Mirrors to pull from, \"HOST[/PATH]=MIRROR[/PATH]\" (rko pull --mirror): pulls of HOST try each MIRROR in order, then HOST; the digest verifies what a mirror serves. Tried before the mirrors of containers' registries.conf."),
        "_rko": RKO_TOOLCHAIN_ATTR,
    },
)
