"""Providers of rules_ko: they carry small metadata files, never layer bytes in memory."""

KoBaseInfo = provider(
    doc = "A base image for ko_image.",
    fields = {
        "spec": "string: what `rko image --base` gets: static, scratch, or DIR@sha256:...",
        "dir": "string: the OCI layout directory's path, or \"\" for a built-in base",
        "short_dir": "string: the layout directory as File.short_path gives paths (relative to the runfiles workspace directory; ../REPO/... in another repository), or \"\"",
        "digest": "string: the pinned manifest or index digest in dir, or \"\" for a built-in base",
        "metadata": "depset[File]: the layout's index.json, manifests and configs (what `rko image` reads)",
        "blobs": "depset[File]: the layout's layer blobs (present only for layers = \"eager\")",
        "reference": "string: HOST/REPO@sha256:... the base was pulled from, or \"\"",
        "insecure_registries": "list[string]: registries reached over plain HTTP or unverified TLS",
        "platforms": "list[string] or None: the os/arch the layout holds images for (None: any)",
    },
)

KoLayerInfo = provider(
    doc = "One layer made by `rko layer`.",
    fields = {
        "descriptor": "File: the layer descriptor JSON (digest, size, diff_id, media type)",
        "blob": "File: the compressed layer",
    },
)

KoImageInfo = provider(
    doc = "One image (one platform) made by ko_image.",
    fields = {
        "importpath": "string: the Go import path (without ko://)",
        "platform": "string: os/arch[/variant]",
        "descriptor": "File: the manifest's descriptor JSON, with platform",
        "manifest": "File: the image manifest JSON",
        "config": "File: the image config JSON",
        "digest": "File: the manifest digest, sha256:...",
        "layers": "list[KoLayerInfo]: the image's own layers, in order",
        "base": "KoBaseInfo: the base",
        "sboms": "list[File]: SBOM documents about this image (SPDX, CycloneDX), from ko_image's `sbom`",
        "provenance": "list[File]: the in-toto provenance statement, when ko_image's `provenance` is set",
    },
)

KoIndexInfo = provider(
    doc = "A multi-platform image index made by ko_image_index.",
    fields = {
        "importpath": "string: the Go import path (without ko://)",
        "descriptor": "File: the index descriptor JSON",
        "index": "File: the index JSON",
        "digest": "File: the index digest, sha256:...",
        "images": "list[KoImageInfo]: one per platform, in the order of `platforms`",
    },
)

KoPushInfo = provider(
    doc = "A push made by ko_push: its push manifest, for ko_push_all and ko_resolve. The blobs it names are in the ko_push target's runfiles.",
    fields = {
        "manifest": "File: the push manifest JSON (repository, tags, import path, blobs)",
        "importpath": "string: the Go import path (without ko://)",
        "insecure_registries": "list[string]: registries reached over plain HTTP or unverified TLS",
    },
)
