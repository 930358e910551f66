"""ko_resolve for Buck2: Kubernetes YAML with its ko:// references resolved to digests, as a
cacheable build action with no network; `buck2 run` pushes the images, then prints the YAML.

    buck2 build //deploy:prod --show-output          the resolved YAML (prod.yaml)
    buck2 run //deploy:prod | kubectl apply -f -     push every image in one run, then print it
    buck2 run //deploy:prod -- --push=false          print only

The ko_resolve action reads the YAML files and the push manifests only (rko resolve reads
no blob files), so it runs as soon as the manifests are made, remotely or from the cache;
the blobs are hidden inputs of the RunInfo, which Buck2 materializes for `buck2 run` only.
"""

load("//starlark:ko.bzl", "check_yaml_srcs", "resolve_args")
load(":args.bzl", "run_rko")
load(":image.bzl", "rule_name")
load(":providers.bzl", "KoPushInfo")
load(":push.bzl", "push_infos", "push_run_info")
load(":toolchain.bzl", "RKO_TOOLCHAIN_ATTR")

def _ko_resolve_impl(ctx: AnalysisContext) -> list[Provider]:
    rule = rule_name("ko_resolve", ctx)
    check_yaml_srcs(rule, [s.short_path for s in ctx.attrs.srcs])
    pushes = push_infos(rule, "images", ctx.attrs.images)
    resolved = ctx.actions.declare_output(ctx.label.name + ".yaml")

    # The push manifests only: resolving reads no image bytes.
    run_rko(ctx, resolve_args(ctx.attrs.srcs, [p.manifest for p in pushes], resolved, ctx.attrs.tag_refs), "ko_resolve")
    return [DefaultInfo(default_output = resolved), push_run_info(ctx, pushes, then_print = resolved)]

ko_resolve = rule(
    impl = _ko_resolve_impl,
    doc = "Resolves every YAML scalar `ko://IMPORTPATH` in srcs (files in order, as one multi-document stream) to the REPOSITORY@sha256:DIGEST its ko_push in images records; everything else stays byte-identical. Default output: `<name>.yaml`. `buck2 run` pushes every image in one `rko push` run (rko's output on stderr), then prints the YAML on stdout; `-- --push=false` only prints, and other arguments go to `rko push`.",
    attrs = {
        "srcs": attrs.list(attrs.source(), doc = "Kubernetes YAML files (.yaml or .yml) with ko:// references, concatenated in this order."),
        "images": attrs.list(attrs.dep(providers = [KoPushInfo]), doc = "ko_push targets: their import paths are what ko:// may name, and `buck2 run` pushes them."),
        "tag_refs": attrs.bool(default = False, doc = "Write REPOSITORY:TAG@sha256:DIGEST (the push's first tag) instead of REPOSITORY@sha256:DIGEST."),
        "_rko": RKO_TOOLCHAIN_ATTR,
    },
)
