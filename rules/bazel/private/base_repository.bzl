"""ko_base: a repository rule that pulls a base pinned by digest with `rko pull`.

Only manifests and configs are fetched (layers = "shallow", the default): `rko image` needs
nothing else, and pushes mount or stream the base layers from their registry. "eager" also
downloads the layers, for tarball, layout and load outputs that must work offline.
"""

load("//starlark:ko.bzl", "check_mirrors", "check_one_of", "check_platform", "pull_args", "render_strings", "split_reference")

# The environment `rko pull` reads: proxies (Go's rules: the upper-case name first), trust
# (SSL_CERT_FILE, SSL_CERT_DIR, ~/.config/containers/certs.d, and RKO_ETC_DIR, which moves
# /etc/ssl/certs, /etc/docker/certs.d, /etc/containers/certs.d and
# /etc/containers/registries.conf), mirrors (CONTAINERS_REGISTRIES_CONF), and credentials
# (src/registry/auth.rs: DOCKER_CONFIG or ~/.docker/config.json, REGISTRY_AUTH_FILE or
# $XDG_RUNTIME_DIR/containers/auth.json and ~/.config/containers/auth.json, and
# docker-credential-* helpers found on PATH).
# Declared in `environ`, so Bazel re-runs the pull when one of them changes; rctx.execute
# gives rko the client environment (with --repo_env applied) either way.
PULL_ENVIRON = [
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "NO_PROXY",
    "no_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "RKO_ETC_DIR",
    "CONTAINERS_REGISTRIES_CONF",
    "DOCKER_CONFIG",
    "REGISTRY_AUTH_FILE",
    "XDG_RUNTIME_DIR",
    "HOME",
    "PATH",
]

def _blob(digest):
    return "layout/blobs/sha256/" + digest[len("sha256:"):]

def _ko_base_impl(rctx):
    rule = "ko_base(name = \"%s\")" % rctx.attr.name
    repository, digest = split_reference(rule, "image", rctx.attr.image, rctx.attr.digest)
    check_one_of(rule, "layers", rctx.attr.layers, ["shallow", "eager"])
    check_mirrors(rule, rctx.attr.mirrors)
    platforms = rctx.attr.platforms or ["linux/amd64"]
    for p in platforms:
        check_platform(rule, "platforms", p)
    reference = repository + "@" + digest
    rko = str(rctx.path(rctx.attr.rko))
    rctx.report_progress("rko pull " + reference)
    res = rctx.execute(
        [rko] + render_strings(pull_args(reference, "layout", platforms, rctx.attr.layers == "eager", rctx.attr.insecure_registries, rctx.attr.mirrors)),
        timeout = rctx.attr.timeout,
    )
    if res.return_code != 0:
        fail("%s: rko pull %s failed:\n%s" % (rule, reference, res.stderr))

    # Sort what was pulled into metadata (what `rko image` reads) and layers.
    metadata = ["layout/index.json"]
    if rctx.path("layout/rko-sources.json").exists:
        metadata.append("layout/rko-sources.json")
    layers = []
    todo = [digest]
    for _ in range(1000):
        if not todo:
            break
        d = todo.pop()
        path = _blob(d)
        if path in metadata:
            continue
        metadata.append(path)
        doc = json.decode(rctx.read(path))
        for m in doc.get("manifests", []):
            if rctx.path(_blob(m["digest"])).exists:
                todo.append(m["digest"])
        if "config" in doc:
            metadata.append(_blob(doc["config"]["digest"]))
        for l in doc.get("layers", []):
            if rctx.path(_blob(l["digest"])).exists and _blob(l["digest"]) not in layers:
                layers.append(_blob(l["digest"]))
    alias = rctx.attr.name.replace("~", "+").split("+")[-1]
    rctx.file("BUILD.bazel", """# {reference}, pulled by rko ({layers}).
load("{base_bzl}", "ko_base_image")

ko_base_image(
    name = "image",
    digest = "{digest}",
    insecure_registries = {insecure},
    layers = {layer_files},
    metadata = {metadata},
    oci_layout = "layout/oci-layout",
    platforms = {platforms},
    reference = "{reference}",
    visibility = ["//visibility:public"],
)
{alias}
""".format(
        reference = reference,
        layers = rctx.attr.layers,
        base_bzl = str(Label("//rules/bazel/private:base.bzl")),
        digest = digest,
        insecure = repr(rctx.attr.insecure_registries),
        layer_files = repr(layers),
        metadata = repr(metadata),
        platforms = repr(platforms),
        alias = "" if alias == "image" else "alias(\n    name = \"%s\",\n    actual = \":image\",\n    visibility = [\"//visibility:public\"],\n)" % alias,
    ))

ko_base = repository_rule(
    implementation = _ko_base_impl,
    doc = "A base image pinned by digest, pulled by `rko pull`. Use it as base = \"@NAME//:image\" (or \"@NAME\").",
    attrs = {
        "image": attr.string(mandatory = True, doc = "HOST/REPO, or HOST/REPO@sha256:... (a tag alone is refused)."),
        "digest": attr.string(doc = "sha256:... of the manifest or index (unless image has it)."),
        "platforms": attr.string_list(doc = "Platforms to fetch from an index (default linux/amd64)."),
        "layers": attr.string(default = "shallow", doc = "\"shallow\": manifests and configs only; \"eager\": layers too (offline tarball, layout, load)."),
        "insecure_registries": attr.string_list(doc = "Registries (HOST[:PORT]) reached over plain HTTP or unverified TLS."),
        "mirrors": attr.string_list(doc = "Mirrors to pull from, \"HOST[/PATH]=MIRROR[/PATH]\" (rko pull --mirror): pulls of HOST try each MIRROR in order, then HOST; the digest verifies what a mirror serves. Tried before the mirrors of containers' registries.conf."),
        "rko": attr.label(default = "@rko//:rko", allow_single_file = True, doc = "The rko binary that pulls."),
        "timeout": attr.int(default = 600, doc = "Seconds the pull may take."),
    },
    environ = PULL_ENVIRON,
)
