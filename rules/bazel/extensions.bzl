"""Module extensions of rules_ko, for Bazel 6 and later with bzlmod (MODULE.bazel).

They do what rules_ko_register_toolchains() and ko_base do in a WORKSPACE. A user's
MODULE.bazel:

    bazel_dep(name = "rules_ko", version = "0.1.0")

    # Base images, pinned by digest and pulled by `rko pull` (see ko_base in
    # @rules_ko//rules/bazel:base.bzl). Without one, ko_image uses rko's embedded static base.
    ko = use_extension("@rules_ko//rules/bazel:extensions.bzl", "ko")
    ko.base(
        name = "distroless_static",
        image = "gcr.io/distroless/static-debian12",
        digest = "sha256:<64 hex digits: skopeo inspect --format '{{.Digest}}' docker://IMAGE:TAG>",
        platforms = ["linux/amd64", "linux/arm64"],
        # Optional: pull through a mirror first (see the README on proxies and mirrors).
        # mirrors = ["gcr.io=mirror.corp.example.com"],
    )
    use_repo(ko, "distroless_static")

    # Optional: a prebuilt rko. Without this tag rko is built from rules_ko's sources with
    # cargo (or copied from $RKO_BINARY: --repo_env=RKO_BINARY=/path/to/rko).
    rko = use_extension("@rules_ko//rules/bazel:extensions.bzl", "rko")
    rko.toolchain(
        urls = ["https://.../rko-linux-x86_64"],
        sha256 = "<sha256 of that file>",
    )

and in a BUILD file, `base = "@distroless_static//:image"` (or just "@distroless_static").
rules_ko's own MODULE.bazel registers the rko toolchains (@rko//:all, one per execution
platform; those without a binary fail with "no rko for this platform" and what to set);
users need no use_repo for them.
"""

load("//rules/bazel:repositories.bzl", "rko_repository")
load("//rules/bazel/private:base_repository.bzl", "ko_base")

def _rko_impl(module_ctx):
    # module_ctx.modules is in breadth-first order from the root module, so the root
    # module's tag wins, then the nearest dependency's.
    chosen = None
    for mod in module_ctx.modules:
        tags = mod.tags.toolchain
        if len(tags) > 1:
            fail("rko.toolchain: module %s: expected at most one rko.toolchain tag, found %d; keep the one with the urls and sha256 of the rko to use" % (mod.name, len(tags)))
        if tags:
            chosen = tags[0]
            break
    if chosen:
        rko_repository(name = "rko", urls = chosen.urls, sha256 = chosen.sha256, os = chosen.os, cpu = chosen.cpu)
    else:
        # No tag anywhere: copy $RKO_BINARY, or build rko from source with cargo.
        rko_repository(name = "rko")

rko = module_extension(
    implementation = _rko_impl,
    doc = "The rko binary (repository @rko) whose toolchain rules_ko registers: a prebuilt one (rko.toolchain with urls and sha256), else $RKO_BINARY, else built from source with cargo.",
    tag_classes = {
        "toolchain": tag_class(
            doc = "Which rko to use. The root module's tag wins; with none, rko is built from source.",
            attrs = {
                "urls": attr.string_list(doc = "Where to download a prebuilt rko (a linux executable)."),
                "sha256": attr.string(doc = "The sha256 of the downloaded rko; required with urls."),
                "os": attr.string(doc = "The @platforms//os value the binary runs on (default linux)."),
                "cpu": attr.string(doc = "The @platforms//cpu value the binary runs on (default: this machine's)."),
            },
        ),
    },
)

def _base_key(tag):
    return dict(
        image = tag.image,
        digest = tag.digest,
        platforms = tag.platforms,
        layers = tag.layers,
        insecure_registries = tag.insecure_registries,
        mirrors = tag.mirrors,
    )

def _ko_impl(module_ctx):
    # The rko that pulls: rules_ko's @rko, resolved from this file (rules_ko's MODULE.bazel
    # has use_repo(rko, "rko")), not from the user's module, which need not see it.
    rko_label = Label("@rko//:rko")
    bases = {}  # name -> (module name, is root, tag)
    for mod in module_ctx.modules:
        for tag in mod.tags.base:
            if tag.name in bases:
                owner, owner_is_root, other = bases[tag.name]
                if owner == mod.name:
                    fail("ko.base: module %s: expected each base name once, found %r twice; rename one" % (mod.name, tag.name))
                if owner_is_root:
                    # The root module's definition wins over its dependencies'.
                    continue
                if _base_key(other) != _base_key(tag):
                    fail("ko.base: expected one definition of base %r, found different ones in modules %s and %s; define it in the root module to choose" % (tag.name, owner, mod.name))
                continue
            bases[tag.name] = (mod.name, mod.is_root, tag)
    for name, (_, _, tag) in bases.items():
        ko_base(
            name = name,
            image = tag.image,
            digest = tag.digest,
            platforms = tag.platforms,
            layers = tag.layers,
            insecure_registries = tag.insecure_registries,
            mirrors = tag.mirrors,
            rko = rko_label,
        )

ko = module_extension(
    implementation = _ko_impl,
    doc = "Base images pinned by digest (ko.base), each a repository with an `image` target for ko_image's base.",
    tag_classes = {
        "base": tag_class(
            doc = "A base image, pulled by `rko pull` as the ko_base repository rule does. Bring it into scope with use_repo(ko, NAME).",
            attrs = {
                "name": attr.string(mandatory = True, doc = "The repository name: base = \"@NAME//:image\" (or \"@NAME\")."),
                "image": attr.string(mandatory = True, doc = "HOST/REPO, or HOST/REPO@sha256:... (a tag alone is refused)."),
                "digest": attr.string(doc = "sha256:... of the manifest or index (unless image has it)."),
                "platforms": attr.string_list(doc = "Platforms to fetch from an index (default linux/amd64)."),
                "layers": attr.string(
                    default = "shallow",
                    values = ["shallow", "eager"],
                    doc = "\"shallow\": manifests and configs only; \"eager\": layers too (offline tarball, layout, load).",
                ),
                "insecure_registries": attr.string_list(doc = "Registries (HOST[:PORT]) reached over plain HTTP or unverified TLS."),
                "mirrors": attr.string_list(doc = "Mirrors to pull from, \"HOST[/PATH]=MIRROR[/PATH]\" (rko pull --mirror), tried in order before HOST; the digest verifies what they serve."),
            },
        ),
    },
)
