"""ko_image for Buck2: a Go binary (and kodata) on a base, as ko lays it out.

Actions (category, identifier), each cached apart:
  ko_layer tar-N    rko layer tar     -> one extra layer per file of `layers`
  ko_layer kodata   rko layer kodata  -> kodata layer blob + descriptor
  ko_layer binary   rko layer binary  -> binary layer blob + descriptor
  ko_image          rko image         -> config, manifest, descriptor, digest (metadata only)
  ko_sbom spdx|cyclonedx  rko sbom    -> SBOMs from the binary's Go build info ([sbom])
  ko_provenance     rko provenance    -> in-toto SLSA v1 statement ([provenance])
  ko_tarball, ko_layout               -> the whole image, only for [tarball] / [layout]
ko_push attaches the SBOMs and provenance to the pushed image as OCI referrers.
"""

load(
    "//starlark:ko.bzl",
    "COMPRESSIONS",
    "DEFAULT_BUILDER_ID",
    "SBOM_CHOICES",
    "SBOM_SUFFIXES",
    "base_arg",
    "check_base_platform",
    "check_binary",
    "check_image_attrs",
    "debug_layer_wanted",
    "image_args",
    "image_options",
    "image_sources",
    "kodata_image_path",
    "kodata_prefix",
    "layer_binary_args",
    "layer_kodata_args",
    "layer_tar_args",
    "provenance_args",
    "sbom_args",
    "sbom_formats",
    "unknown_target_platform",
)
load(":args.bzl", "run_rko")
load(":outputs.bzl", "image_sub_targets")
load(":providers.bzl", "KoBaseInfo", "KoImageInfo", "KoLayerInfo", "KoPlatformInfo")
load(":toolchain.bzl", "RKO_TOOLCHAIN_ATTR")

def rule_name(kind: str, ctx: AnalysisContext) -> str:
    """How messages name the target: `ko_image root//cmd/foo:image`."""
    return "%s %s" % (kind, ctx.label.raw_target())

def _binary(ctx: AnalysisContext, rule: str) -> Artifact:
    outputs = ctx.attrs.binary[DefaultInfo].default_outputs
    check_binary(rule, [a.short_path for a in outputs])
    return outputs[0]

def _workspace_path(ctx: AnalysisContext, a: Artifact) -> str:
    """A kodata artifact's path from the project root, as Bazel's short_path is."""
    package = ctx.label.package if a.is_source or a.owner == None else a.owner.package
    return package + "/" + a.short_path if package else a.short_path

def _declare_layer(ctx: AnalysisContext, prefix: str, name: str, ext: str) -> KoLayerInfo:
    return KoLayerInfo(
        descriptor = ctx.actions.declare_output(prefix + name + ".json"),
        blob = ctx.actions.declare_output(prefix + name + ext),
    )

def _ko_image_impl(ctx: AnalysisContext) -> list[Provider]:
    rule = rule_name("ko_image", ctx)
    importpath = check_image_attrs(rule, ctx.attrs)
    if ctx.attrs.platform:
        platform = ctx.attrs.platform
    else:
        platform = ctx.attrs._target_platform[KoPlatformInfo].platform
        if not platform:
            unknown_target_platform(rule)
    binary = _binary(ctx, rule)
    base = ctx.attrs.base[KoBaseInfo]
    check_base_platform(rule, platform, str(ctx.attrs.base.label.raw_target()), base.platforms)
    ext = COMPRESSIONS[ctx.attrs.compression]
    prefix = ctx.label.name + ".ko/"

    # Extra layers from users' tars, in order, below kodata and the binary.
    layers = []
    for i, a in enumerate(ctx.attrs.layers):
        extra = _declare_layer(ctx, prefix, "tar-%d" % i, ext)
        run_rko(ctx, layer_tar_args(
            a,
            extra.blob,
            extra.descriptor,
            ctx.attrs.compression,
            ctx.attrs.compression_level,
        ), "ko_layer", "tar-%d" % i)
        layers.append(extra)

    # kodata first, then the binary: ko's layer order.
    prefix_dir = kodata_prefix(ctx.label.package, ctx.attrs.kodata_strip_prefix)
    kodata_files = [[kodata_image_path(rule, _workspace_path(ctx, a), prefix_dir), a] for a in ctx.attrs.kodata]
    kodata = _declare_layer(ctx, prefix, "kodata", ext)
    run_rko(ctx, layer_kodata_args(
        kodata_files,
        importpath,
        kodata.blob,
        kodata.descriptor,
        ctx.attrs.compression,
        ctx.attrs.compression_level,
        platform,
    ), "ko_layer", "kodata")
    layer = _declare_layer(ctx, prefix, "binary", ext)
    run_rko(ctx, layer_binary_args(
        binary,
        importpath,
        platform,
        layer.blob,
        layer.descriptor,
        ctx.attrs.compression,
        ctx.attrs.compression_level,
        ctx.attrs.linux_capabilities,
    ), "ko_layer", "binary")
    layers += [kodata, layer]

    # ko's debug image: Delve in its own layer, after the binary, with its capabilities.
    if debug_layer_wanted(rule, ctx.attrs.debug, ctx.attrs.dlv != None, platform):
        delve = _declare_layer(ctx, prefix, "delve", ext)
        run_rko(ctx, layer_binary_args(
            ctx.attrs.dlv,
            importpath,
            platform,
            delve.blob,
            delve.descriptor,
            ctx.attrs.compression,
            ctx.attrs.compression_level,
            ctx.attrs.linux_capabilities,
            delve = True,
        ), "ko_layer", "delve")
        layers.append(delve)

    outs = {
        "config": ctx.actions.declare_output(ctx.label.name + ".config.json"),
        "manifest": ctx.actions.declare_output(ctx.label.name + ".manifest.json"),
        "descriptor": ctx.actions.declare_output(ctx.label.name + ".descriptor.json"),
        "digest": ctx.actions.declare_output(ctx.label.name + ".digest"),
    }

    # Descriptors and the base's metadata only: never layer bytes.
    run_rko(ctx, image_args(
        base_arg(base.spec, base.dir, base.digest),
        platform,
        [l.descriptor for l in layers],
        outs,
        **image_options(ctx.attrs, base.reference)
    ), "ko_image")

    # Supply chain: from the binary's build info and the image's own metadata, no layers.
    sboms = []
    sub_files = {}
    for format in sbom_formats(rule, ctx.attrs.sbom):
        sbom = ctx.actions.declare_output(ctx.label.name + SBOM_SUFFIXES[format])
        run_rko(ctx, sbom_args(binary, importpath, outs["descriptor"], outs["config"], format, sbom), "ko_sbom", format)
        sboms.append(sbom)
        sub_files[format] = sbom
    provenance = []
    if ctx.attrs.provenance:
        statement = ctx.actions.declare_output(ctx.label.name + ".provenance.json")
        run_rko(ctx, provenance_args(
            binary,
            importpath,
            platform,
            outs["descriptor"],
            base_arg(base.spec, base.dir, base.digest),
            base.reference,
            kodata_files,
            ctx.attrs.builder_id or DEFAULT_BUILDER_ID % "buck2",
            statement,
            ctx.attrs.layers,
        ), "ko_provenance")
        provenance.append(statement)
        sub_files["provenance"] = statement
    info = KoImageInfo(
        importpath = importpath,
        platform = platform,
        descriptor = outs["descriptor"],
        manifest = outs["manifest"],
        config = outs["config"],
        digest = outs["digest"],
        layers = layers,
        base = base,
        sboms = sboms,
        provenance = provenance,
    )
    sub_files.update({
        "config": outs["config"],
        "descriptor": outs["descriptor"],
        "digest": outs["digest"],
        "manifest": outs["manifest"],
    })
    subs = image_sub_targets(ctx, image_sources(info), sub_files)
    if sboms:
        # Every SBOM the image has, whatever its format.
        subs["sbom"] = [DefaultInfo(default_outputs = sboms)]
    return [
        info,
        DefaultInfo(
            default_output = outs["digest"],
            other_outputs = [outs["manifest"], outs["config"]],
            sub_targets = subs,
        ),
    ]

ko_image = rule(
    impl = _ko_image_impl,
    doc = "A Go binary as an OCI image in ko's layout. Default output: the digest (manifest and config beside it); sub-targets [tarball], [layout], [digest], [manifest], [config], [descriptor], [sbom] ([spdx], [cyclonedx]) and [provenance].",
    attrs = {
        "binary": attrs.dep(doc = "The Go executable: a prelude go_binary, or any target whose default output is one executable. Goes to /ko-app/<last element of importpath>."),
        "importpath": attrs.string(default = "", doc = "The Go import path of the binary's main package (ko://... accepted). Names /ko-app/<name> and, with ko_push naming, the repository."),
        "base": attrs.dep(default = "rules_ko//rules/buck2:static", providers = [KoBaseInfo], doc = "The base: a ko_base (pinned by digest), rules_ko//rules/buck2:static (default) or rules_ko//rules/buck2:scratch."),
        "kodata": attrs.list(attrs.source(), default = [], doc = "Files for /var/run/ko (KO_DATA_PATH), at their path below kodata_strip_prefix: glob([\"kodata/**\"]) as ko would."),
        "layers": attrs.list(attrs.source(), default = [], doc = "Tars of files to add next to the binary (tzdata, configs, certificates), one extra layer per file, in order, between the base and kodata. Each is rewritten deterministically by `rko layer tar`: paths, types, modes, numeric owners and contents kept; times (0), owner names and entry order normalized."),
        "kodata_strip_prefix": attrs.string(default = "kodata", doc = "The directory, relative to this package, whose contents become /var/run/ko."),
        "platform": attrs.string(default = "", doc = "os/arch[/variant] of the image. Default: from the target platform's constraints (so ko_image_index's transition sets it)."),
        "env": attrs.dict(attrs.string(), attrs.string(), default = {}, doc = "Environment variables, replacing the base's."),
        "labels": attrs.dict(attrs.string(), attrs.string(), default = {}, doc = "Config labels."),
        "annotations": attrs.dict(attrs.string(), attrs.string(), default = {}, doc = "Manifest annotations."),
        "user": attrs.string(default = "", doc = "The user to run as (default: the base's; 65532 for the static base)."),
        "workdir": attrs.string(default = "", doc = "The working directory."),
        "entrypoint": attrs.list(attrs.string(), default = [], doc = "Replaces ko's entrypoint [/ko-app/<name>] when not empty."),
        "cmd": attrs.list(attrs.string(), default = [], doc = "Arguments to the entrypoint, when not empty."),
        "ports": attrs.list(attrs.string(), default = [], doc = "Exposed ports: PORT[/tcp|udp|sctp]."),
        "created": attrs.string(default = "", doc = "The config's created time, seconds since the epoch (default: the base's)."),
        "compression": attrs.string(default = "gzip", doc = "Layer compression: gzip (ko's level 1 by default) or zstd."),
        "compression_level": attrs.int(default = 0, doc = "Compression level (gzip 1-12, zstd 1-19); 0 takes rko's default."),
        "debug": attrs.bool(default = False, doc = "Make ko's debug image (ko build --debug): dlv at /ko-app/dlv in a layer after the binary's, and the entrypoint `dlv exec --listen=:40000 --headless --log --accept-multiclient --api-version=2 -- /ko-app/<name>`. For linux/amd64 and linux/arm64 (others are built without Delve, as by ko). Build the binary with `-gcflags=all=-N -l` for a useful session (rules_go: gc_goopts = [\"-N\", \"-l\"])."),
        "dlv": attrs.option(attrs.source(), default = None, doc = "With debug: a static Delve binary (CGO_ENABLED=0) for the image's platform, e.g. a go_binary of github.com/go-delve/delve/cmd/dlv."),
        "linux_capabilities": attrs.list(attrs.string(), default = [], doc = "Linux file capabilities for the binary, as ko's linux_capabilities: names (permitted), or cap_from_text(3) clauses such as \"net_bind_service=ep\". Written as the security.capability xattr of /ko-app/<name>, byte-identical to ko."),
        "sbom": attrs.string(default = "spdx", doc = "The SBOMs to make from the binary's Go build info ([sbom], [spdx], [cyclonedx]; ko_push attaches them): " + ", ".join(sorted(SBOM_CHOICES.keys())) + ". spdx (SPDX 2.3) is ko's default; cyclonedx is CycloneDX 1.6."),
        "provenance": attrs.bool(default = False, doc = "Make an in-toto SLSA v1 provenance statement from the image's inputs ([provenance]; ko_push attaches it)."),
        "builder_id": attrs.string(default = "", doc = "The provenance's runDetails.builder.id (a URI naming your build platform). Default: " + DEFAULT_BUILDER_ID % "buck2" + "."),
        "_target_platform": attrs.default_only(attrs.dep(default = "rules_ko//rules/buck2:target_platform", providers = [KoPlatformInfo])),
        "_rko": RKO_TOOLCHAIN_ATTR,
    },
)
