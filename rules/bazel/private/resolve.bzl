"""ko_resolve: Kubernetes YAML with its ko:// references resolved to digests, as a cached
build action with no network; `bazel run` pushes the images, then prints the YAML.

    bazel build //deploy:prod                      the resolved YAML (deploy/prod.yaml)
    bazel run //deploy:prod | kubectl apply -f -   push every image in one run, then print it
    bazel run //deploy:prod -- --push=false        print only
"""

load("//starlark:ko.bzl", "resolve_args")
load(":args.bzl", "rko_action")
load(":outputs.bzl", "LAUNCHER_ATTRS")
load(":providers.bzl", "KoPushInfo")
load(":push.bzl", "push_all_run")
load(":toolchain_type.bzl", "TOOLCHAIN_TYPE", "rko_tool")

def _ko_resolve_impl(ctx):
    rko = rko_tool(ctx)
    manifests = [p[KoPushInfo].manifest for p in ctx.attr.images]
    resolved = ctx.actions.declare_file(ctx.label.name + ".yaml")
    rko_action(
        ctx,
        rko,
        resolve_args(ctx.files.srcs, manifests, resolved, ctx.attr.tag_refs),
        # The push manifests only: resolving reads no image bytes.
        inputs = ctx.files.srcs + manifests,
        outputs = [resolved],
        mnemonic = "KoResolve",
        progress_message = "KoResolve %s" % ctx.label,
    )
    script, runfiles = push_all_run(ctx, rko, ctx.attr.images, then_print = resolved)
    return [DefaultInfo(executable = script, files = depset([resolved]), runfiles = runfiles)]

ko_resolve = rule(
    implementation = _ko_resolve_impl,
    doc = "Resolves every YAML scalar `ko://IMPORTPATH` in srcs (files in order, as one multi-document stream) to the REPOSITORY@sha256:DIGEST its ko_push in images records; everything else stays byte-identical. `bazel run` pushes every image in one `rko push` run (rko's output on stderr), then prints the YAML on stdout; `-- --push=false` only prints, and other arguments go to `rko push`.",
    attrs = dict(LAUNCHER_ATTRS, **{
        "srcs": attr.label_list(
            mandatory = True,
            allow_files = [".yaml", ".yml"],
            doc = "Kubernetes YAML files with ko:// references, concatenated in this order.",
        ),
        "images": attr.label_list(
            mandatory = True,
            providers = [KoPushInfo],
            doc = "ko_push targets: their import paths are what ko:// may name, and `bazel run` pushes them.",
        ),
        "tag_refs": attr.bool(
            default = False,
            doc = "Write REPOSITORY:TAG@sha256:DIGEST (the push's first tag) instead of REPOSITORY@sha256:DIGEST.",
        ),
    }),
    executable = True,
    toolchains = [TOOLCHAIN_TYPE],
)
