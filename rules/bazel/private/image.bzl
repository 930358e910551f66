"""ko_image: a Go binary (and kodata) on a base, as ko lays it out.

Actions, each with its own mnemonic so Bazel caches and re-runs them apart:
  KoLayer (tar)     rko layer tar     -> one extra layer per file of `layers`
  KoLayer (kodata)  rko layer kodata  -> kodata layer blob + descriptor
  KoLayer (binary)  rko layer binary  -> binary layer blob + descriptor
  KoImage           rko image         -> config, manifest, descriptor, digest (metadata only)
  KoSbom            rko sbom          -> SPDX / CycloneDX from the binary's Go build info
  KoProvenance      rko provenance    -> in-toto SLSA v1 statement (provenance = True)
  KoTarball/KoLayout (output groups "tarball" and "layout") -> the whole image
A Go change re-runs the binary layer and the image; an env change re-runs only the image.
The SBOMs and provenance are output groups "sbom" and "provenance"; ko_push attaches them
to the pushed image as OCI referrers.
"""

load("//starlark:ko.bzl", "COMPRESSIONS", "DEFAULT_BUILDER_ID", "SBOM_CHOICES", "SBOM_SUFFIXES", "base_arg", "check_base_platform", "check_binary", "check_image_attrs", "debug_layer_wanted", "image_args", "image_options", "image_sources", "kodata_image_path", "kodata_prefix", "layer_binary_args", "layer_kodata_args", "layer_tar_args", "provenance_args", "sbom_args", "sbom_formats", "unknown_target_platform")
load(":args.bzl", "rko_action")
load(":outputs.bzl", "output_group_actions")
load(":platform.bzl", "PLATFORM_ATTRS", "target_platform")
load(":providers.bzl", "KoBaseInfo", "KoImageInfo", "KoLayerInfo")
load(":toolchain_type.bzl", "TOOLCHAIN_TYPE", "rko_tool")

def _binary_file(ctx, rule):
    # An executable target (go_binary) names its binary: no need to look at its files.
    executable = ctx.attr.binary[DefaultInfo].files_to_run.executable
    if executable:
        return executable

    # Anything else must give one file; ctx.files is the list Bazel keeps for the attribute.
    files = ctx.files.binary
    check_binary(rule, [f.short_path for f in files])
    return files[0]

def _declare_layer(ctx, prefix, name, ext):
    return KoLayerInfo(
        descriptor = ctx.actions.declare_file(prefix + name + ".json"),
        blob = ctx.actions.declare_file(prefix + name + ext),
    )

def _run_layer(ctx, rko, layer, arguments, inputs, what):
    rko_action(
        ctx,
        rko,
        arguments,
        inputs = inputs,
        outputs = [layer.descriptor, layer.blob],
        mnemonic = "KoLayer",
        progress_message = "KoLayer " + what,
    )

def _ko_image_impl(ctx):
    rule = "ko_image %s" % ctx.label
    rko = rko_tool(ctx)
    importpath = check_image_attrs(rule, ctx.attr)
    if ctx.attr.platform:
        platform = ctx.attr.platform
    else:
        platform = target_platform(ctx)
        if not platform:
            unknown_target_platform(rule, str(getattr(ctx.fragments.platform, "platform", "")))
    binary = _binary_file(ctx, rule)
    base = ctx.attr.base[KoBaseInfo]
    check_base_platform(rule, platform, str(ctx.attr.base.label), base.platforms)
    ext = COMPRESSIONS[ctx.attr.compression]
    prefix = ctx.label.name + ".ko/"

    # Extra layers from users' tars, in order, below kodata and the binary.
    layers = []
    for i, f in enumerate(ctx.files.layers):
        extra = _declare_layer(ctx, prefix, "tar-%d" % i, ext)
        _run_layer(
            ctx,
            rko,
            extra,
            layer_tar_args(f, extra.blob, extra.descriptor, ctx.attr.compression, ctx.attr.compression_level),
            [f],
            "tar %s (%s)" % (ctx.label, f.short_path),
        )
        layers.append(extra)

    # kodata first, then the binary: ko's layer order.
    prefix_dir = kodata_prefix(ctx.label.package, ctx.attr.kodata_strip_prefix)
    kodata_files = []
    for f in ctx.files.kodata:
        path = f.short_path
        if path.startswith("../"):
            fail("%s: attribute 'kodata': expected files of this workspace, found %s from another repository" % (rule, f.short_path))
        # Checked here, at analysis, so a stray file fails with the attribute's name. Tuples:
        # ctx.actions.args() keeps them (immutable) until it writes the command line.
        kodata_files.append((kodata_image_path(rule, path, prefix_dir), f))
    kodata = _declare_layer(ctx, prefix, "kodata", ext)
    _run_layer(
        ctx,
        rko,
        kodata,
        layer_kodata_args(
            kodata_files,
            importpath,
            kodata.blob,
            kodata.descriptor,
            ctx.attr.compression,
            ctx.attr.compression_level,
            platform,
        ),
        ctx.files.kodata,
        "kodata %s (%d files)" % (ctx.label, len(kodata_files)),
    )
    layer = _declare_layer(ctx, prefix, "binary", ext)
    _run_layer(
        ctx,
        rko,
        layer,
        layer_binary_args(
            binary,
            importpath,
            platform,
            layer.blob,
            layer.descriptor,
            ctx.attr.compression,
            ctx.attr.compression_level,
            ctx.attr.linux_capabilities,
        ),
        [binary],
        "binary %s (%s)" % (ctx.label, platform),
    )
    layers += [kodata, layer]

    # ko's debug image: Delve in its own layer, after the binary, with its capabilities.
    if debug_layer_wanted(rule, ctx.attr.debug, ctx.file.dlv != None, platform):
        delve = _declare_layer(ctx, prefix, "delve", ext)
        _run_layer(
            ctx,
            rko,
            delve,
            layer_binary_args(
                ctx.file.dlv,
                importpath,
                platform,
                delve.blob,
                delve.descriptor,
                ctx.attr.compression,
                ctx.attr.compression_level,
                ctx.attr.linux_capabilities,
                delve = True,
            ),
            [ctx.file.dlv],
            "delve %s (%s)" % (ctx.label, platform),
        )
        layers.append(delve)

    outs = {
        "config": ctx.actions.declare_file(ctx.label.name + ".config.json"),
        "manifest": ctx.actions.declare_file(ctx.label.name + ".manifest.json"),
        "descriptor": ctx.actions.declare_file(ctx.label.name + ".descriptor.json"),
        "digest": ctx.actions.declare_file(ctx.label.name + ".digest"),
    }
    rko_action(
        ctx,
        rko,
        image_args(
            base_arg(base.spec, base.dir, base.digest),
            platform,
            [l.descriptor for l in layers],
            outs,
            **image_options(ctx.attr, base.reference)
        ),
        # Descriptors and the base's metadata only: never layer bytes.
        inputs = depset([l.descriptor for l in layers], transitive = [base.metadata]),
        outputs = outs.values(),
        mnemonic = "KoImage",
        progress_message = "KoImage " + str(ctx.label) + " (" + platform + ")",
    )

    # Supply chain: from the binary's build info and the image's own metadata, no layers.
    sboms = []
    for format in sbom_formats(rule, ctx.attr.sbom):
        sbom = ctx.actions.declare_file(ctx.label.name + SBOM_SUFFIXES[format])
        rko_action(
            ctx,
            rko,
            sbom_args(binary, importpath, outs["descriptor"], outs["config"], format, sbom),
            inputs = [binary, outs["descriptor"], outs["config"]],
            outputs = [sbom],
            mnemonic = "KoSbom",
            progress_message = "KoSbom %s (%s)" % (ctx.label, format),
        )
        sboms.append(sbom)
    provenance = []
    if ctx.attr.provenance:
        statement = ctx.actions.declare_file(ctx.label.name + ".provenance.json")
        rko_action(
            ctx,
            rko,
            provenance_args(
                binary,
                importpath,
                platform,
                outs["descriptor"],
                base_arg(base.spec, base.dir, base.digest),
                base.reference,
                kodata_files,
                ctx.attr.builder_id or DEFAULT_BUILDER_ID % "bazel",
                statement,
                ctx.files.layers,
            ),
            inputs = depset([binary, outs["descriptor"]] + ctx.files.kodata + ctx.files.layers, transitive = [base.metadata]),
            outputs = [statement],
            mnemonic = "KoProvenance",
            progress_message = "KoProvenance %s" % ctx.label,
        )
        provenance.append(statement)
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
    groups = output_group_actions(ctx, rko, image_sources(info))
    groups["sbom"] = depset(sboms)
    groups["provenance"] = depset(provenance)
    return [
        info,
        DefaultInfo(files = depset([outs["manifest"], outs["config"], outs["digest"]])),
        OutputGroupInfo(**groups),
    ]

IMAGE_ATTRS = dict(PLATFORM_ATTRS)
IMAGE_ATTRS.update({
    "binary": attr.label(
        mandatory = True,
        cfg = "target",
        doc = "The Go executable (rules_go go_binary, or any rule whose output is one executable). Goes to /ko-app/<last element of importpath>.",
    ),
    "importpath": attr.string(
        doc = "The Go import path of the binary's main package (ko://... accepted). Names /ko-app/<name> and, with ko_push naming, the repository.",
    ),
    "base": attr.label(
        default = Label("//base:static"),
        providers = [KoBaseInfo],
        doc = "The base: a ko_base repository's image (pinned by digest), @rules_ko//base:static (default) or @rules_ko//base:scratch.",
    ),
    "kodata": attr.label_list(
        allow_files = True,
        doc = "Files for /var/run/ko (KO_DATA_PATH), at their path below kodata_strip_prefix. glob([\"kodata/**\"]) as ko would.",
    ),
    "layers": attr.label_list(
        allow_files = [".tar", ".tar.gz", ".tgz", ".tar.zst"],
        doc = "Tars of files to add next to the binary (tzdata, configs, certificates), one extra layer per file, in order, between the base and kodata. Each is rewritten deterministically by `rko layer tar`: paths, types, modes, numeric owners and contents kept; times (0), owner names and entry order normalized.",
    ),
    "kodata_strip_prefix": attr.string(
        default = "kodata",
        doc = "The directory, relative to this package, whose contents become /var/run/ko.",
    ),
    "platform": attr.string(
        doc = "os/arch[/variant] of the image. Default: from the target platform (so ko_image_index's transition sets it).",
    ),
    "env": attr.string_dict(doc = "Environment variables, replacing the base's."),
    "labels": attr.string_dict(doc = "Config labels."),
    "annotations": attr.string_dict(doc = "Manifest annotations."),
    "user": attr.string(doc = "The user to run as (default: the base's; 65532 for the static base)."),
    "workdir": attr.string(doc = "The working directory."),
    "entrypoint": attr.string_list(doc = "Replaces ko's entrypoint [/ko-app/<name>] when not empty."),
    "cmd": attr.string_list(doc = "Arguments to the entrypoint, when not empty."),
    "ports": attr.string_list(doc = "Exposed ports: PORT[/tcp|udp|sctp]."),
    "created": attr.string(doc = "The config's created time, seconds since the epoch (default: the base's)."),
    "compression": attr.string(default = "gzip", doc = "Layer compression: gzip (ko's level 1 by default) or zstd."),
    "compression_level": attr.int(default = 0, doc = "Compression level (gzip 1-12, zstd 1-19); 0 takes rko's default."),
    "debug": attr.bool(default = False, doc = "Make ko's debug image (ko build --debug): dlv at /ko-app/dlv in a layer after the binary's, and the entrypoint `dlv exec --listen=:40000 --headless --log --accept-multiclient --api-version=2 -- /ko-app/<name>`. For linux/amd64 and linux/arm64 (others are built without Delve, as by ko). Build the binary with `-gcflags=all=-N -l` for a useful session (rules_go: gc_goopts = [\"-N\", \"-l\"])."),
    "dlv": attr.label(allow_single_file = True, cfg = "target", doc = "With debug: a static Delve binary (CGO_ENABLED=0) for the image's platform, e.g. a go_binary of github.com/go-delve/delve/cmd/dlv."),
    "linux_capabilities": attr.string_list(doc = "Linux file capabilities for the binary, as ko's linux_capabilities: names (permitted), or cap_from_text(3) clauses such as \"net_bind_service=ep\". Written as the security.capability xattr of /ko-app/<name>, byte-identical to ko."),
    "sbom": attr.string(
        default = "spdx",
        doc = "The SBOMs to make from the binary's Go build info (output group `sbom`; ko_push attaches them): " + ", ".join(sorted(SBOM_CHOICES.keys())) + ". spdx (SPDX 2.3) is ko's default; cyclonedx is CycloneDX 1.6.",
    ),
    "provenance": attr.bool(
        default = False,
        doc = "Make an in-toto SLSA v1 provenance statement from the image's inputs (output group `provenance`; ko_push attaches it).",
    ),
    "builder_id": attr.string(
        doc = "The provenance's runDetails.builder.id (a URI naming your build platform). Default: " + DEFAULT_BUILDER_ID % "bazel" + ".",
    ),
})

ko_image = rule(
    implementation = _ko_image_impl,
    doc = "A Go binary as an OCI image in ko's layout. Default outputs: manifest, config and digest; output groups `tarball` and `layout` have the whole image, `sbom` and `provenance` its supply-chain documents.",
    attrs = IMAGE_ATTRS,
    fragments = ["platform"],
    toolchains = [TOOLCHAIN_TYPE],
)
