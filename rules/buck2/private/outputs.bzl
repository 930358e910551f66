"""The whole-image outputs (tarball, layout) as sub-targets, and the files of an image.

An image's bytes are spread over artifacts from several actions (and, for an index,
several configurations) plus the base's OCI layout. `sources` gathers them; the neutral
starlark/ko.bzl turns them into rko's --root/--blob/--layer/--blobs arguments. Buck2 runs
the tarball and layout actions only when [tarball] or [layout] is asked for.
"""

load("//starlark:ko.bzl", "insecure_registries", "layout_args", "tarball_args")
load(":args.bzl", "run_rko")

def source_items(sources: struct, with_blobs: bool) -> dict[str, typing.Any]:
    """The neutral dict for starlark/ko.bzl sources_args.

    with_blobs: name the base layout that holds layer blobs (eager), for outputs that
    need the bytes; else the metadata layout (a push mounts or streams base layers).
    """
    dirs = []
    for b in sources.bases:
        d = (b.blobs_dir or b.dir) if with_blobs else b.dir
        if d:
            dirs.append(d)
    return {
        "root": sources.root,
        "blobs": sources.blobs,
        "layers": [[l.descriptor, l.blob] for l in sources.layers],
        "blob_dirs": dirs,
    }

def metadata_artifacts(sources: struct) -> list[Artifact]:
    """The artifacts of the sources without layer bytes: what a push manifest reads."""
    files = [sources.root] + sources.blobs + [l.descriptor for l in sources.layers]
    for subject, document in sources.attachments:
        files.extend([subject, document])
    return files + [b.dir for b in sources.bases if b.dir]

def blob_artifacts(sources: struct) -> list[Artifact]:
    """Every artifact a push reads at run time."""
    return metadata_artifacts(sources) + [l.blob for l in sources.layers]

def image_sub_targets(ctx: AnalysisContext, sources: struct, files: dict[str, Artifact]) -> dict[str, list[Provider]]:
    """Declares the ko_tarball and ko_layout actions; returns every sub-target."""
    items = source_items(sources, with_blobs = True)
    regs = insecure_registries(sources)

    # A shallow base's layers stream from its registry while these run.
    shallow = len([b for b in sources.bases if b.dir and not b.blobs_dir]) > 0
    tarball = ctx.actions.declare_output(ctx.label.name + ".tar")
    run_rko(ctx, tarball_args(items, [], tarball, regs), "ko_tarball", local_only = shallow)
    layout = ctx.actions.declare_output(ctx.label.name + ".layout", dir = True)
    run_rko(ctx, layout_args(items, layout, regs), "ko_layout", local_only = shallow)
    subs = {
        "layout": [DefaultInfo(default_output = layout)],
        "tarball": [DefaultInfo(default_output = tarball)],
    }
    for name, f in files.items():
        subs[name] = [DefaultInfo(default_output = f)]
    return subs
