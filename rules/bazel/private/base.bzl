"""Base images: the built-in static and scratch bases, and pulled OCI layouts (ko_base)."""

load(":providers.bzl", "KoBaseInfo")

def _ko_builtin_base_impl(ctx):
    return [KoBaseInfo(
        spec = ctx.attr.kind,
        dir = "",
        short_dir = "",
        digest = "",
        metadata = depset(),
        blobs = depset(),
        reference = "",
        insecure_registries = [],
        platforms = None,
    )]

ko_builtin_base = rule(
    implementation = _ko_builtin_base_impl,
    doc = "A base rko makes itself: `static` (CA certificates, nonroot user 65532, /tmp) or `scratch` (empty).",
    attrs = {
        "kind": attr.string(mandatory = True, values = ["static", "scratch"], doc = "Which built-in base."),
    },
)

def _ko_base_image_impl(ctx):
    marker = ctx.file.oci_layout
    return [
        KoBaseInfo(
            spec = marker.dirname + "@" + ctx.attr.digest,
            dir = marker.dirname,
            short_dir = marker.short_path.rpartition("/")[0],
            digest = ctx.attr.digest,
            metadata = depset([marker] + ctx.files.metadata),
            blobs = depset(ctx.files.layers),
            reference = ctx.attr.reference,
            insecure_registries = ctx.attr.insecure_registries,
            platforms = ctx.attr.platforms,
        ),
        DefaultInfo(files = depset([marker] + ctx.files.metadata + ctx.files.layers)),
    ]

ko_base_image = rule(
    implementation = _ko_base_image_impl,
    doc = "An OCI layout written by `rko pull` (made by the ko_base repository rule).",
    attrs = {
        "oci_layout": attr.label(allow_single_file = True, mandatory = True, doc = "The layout's oci-layout file; its directory is the layout."),
        "metadata": attr.label_list(allow_files = True, doc = "index.json, rko-sources.json, manifests and configs."),
        "layers": attr.label_list(allow_files = True, doc = "Layer blobs, when pulled eagerly."),
        "digest": attr.string(mandatory = True, doc = "The pinned manifest or index digest."),
        "reference": attr.string(doc = "HOST/REPO@sha256:... it was pulled from."),
        "insecure_registries": attr.string_list(doc = "Registries reached over plain HTTP or unverified TLS."),
        "platforms": attr.string_list(doc = "The platforms pulled (os/arch)."),
    },
)
