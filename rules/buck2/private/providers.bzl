"""Providers of the Buck2 rules: they carry small metadata artifacts, never layer bytes.

They carry what the Bazel providers (rules/bazel/private/providers.bzl) carry; KoPushInfo
also lists the artifacts a push reads, which Bazel's ko_push keeps in its runfiles.
"""

KoBaseInfo = provider(
    doc = "A base image for ko_image.",
    fields = {
        # static, scratch, or "" for a pulled layout (then dir and digest say which).
        "spec": provider_field(str),
        # The pulled OCI layout directory (manifests and configs), or None for a built-in base.
        "dir": provider_field(Artifact | None, default = None),
        # The pinned manifest or index digest in dir, or "".
        "digest": provider_field(str, default = ""),
        # A layout that also holds the layer blobs (layers = "eager"), or None.
        "blobs_dir": provider_field(Artifact | None, default = None),
        # HOST/REPO@sha256:... the base was pulled from, or "".
        "reference": provider_field(str, default = ""),
        # Registries reached over plain HTTP or unverified TLS.
        "insecure_registries": provider_field(list[str], default = []),
        # The os/arch the layout holds images for; None: any.
        "platforms": provider_field(list[str] | None, default = None),
    },
)

KoLayerInfo = provider(
    doc = "One layer made by `rko layer`.",
    fields = {
        # The layer descriptor JSON (digest, size, diff_id, media type).
        "descriptor": provider_field(Artifact),
        # The compressed layer.
        "blob": provider_field(Artifact),
    },
)

KoImageInfo = provider(
    doc = "One image (one platform) made by ko_image.",
    fields = {
        # The Go import path (without ko://).
        "importpath": provider_field(str),
        # os/arch[/variant].
        "platform": provider_field(str),
        # The manifest's descriptor JSON, with platform.
        "descriptor": provider_field(Artifact),
        "manifest": provider_field(Artifact),
        "config": provider_field(Artifact),
        # The manifest digest, sha256:...
        "digest": provider_field(Artifact),
        # list[KoLayerInfo]: the image's own layers, in order.
        "layers": provider_field(list[typing.Any]),
        # KoBaseInfo: the base.
        "base": provider_field(typing.Any),
        # SBOM documents about this image (SPDX, CycloneDX), from ko_image's `sbom`.
        "sboms": provider_field(list[Artifact], default = []),
        # The in-toto provenance statement, when ko_image's `provenance` is set.
        "provenance": provider_field(list[Artifact], default = []),
    },
)

KoIndexInfo = provider(
    doc = "A multi-platform image index made by ko_image_index.",
    fields = {
        "importpath": provider_field(str),
        # The index descriptor JSON.
        "descriptor": provider_field(Artifact),
        "index": provider_field(Artifact),
        # The index digest, sha256:...
        "digest": provider_field(Artifact),
        # list[KoImageInfo]: one per platform, in the order of `platforms`.
        "images": provider_field(list[typing.Any]),
    },
)

KoPushInfo = provider(
    doc = "A push made by ko_push: its push manifest, for ko_push_all and ko_resolve.",
    fields = {
        # The push manifest JSON (repository, tags, import path, blobs).
        "manifest": provider_field(Artifact),
        # The Go import path (without ko://).
        "importpath": provider_field(str),
        # Registries reached over plain HTTP or unverified TLS.
        "insecure_registries": provider_field(list[str], default = []),
        # Every artifact the manifest names (descriptors, metadata, layer blobs, the base's
        # layout): hidden inputs of a RunInfo that pushes it, so `buck2 run` materializes them.
        "blobs": provider_field(list[Artifact], default = []),
    },
)

RkoToolchainInfo = provider(
    doc = "The rko binary the rules run.",
    fields = {
        # The rko executable, as its RunInfo (an http_file, or a locally built binary).
        "rko": provider_field(RunInfo),
    },
)

KoPlatformInfo = provider(
    doc = "The OCI platform of the configuration a target is built in.",
    fields = {
        # os/arch[/variant], or "" when the configuration matches no platform rules_ko knows.
        "platform": provider_field(str),
    },
)
