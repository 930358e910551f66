"""The whole-image outputs (tarball, layout) and staging image files for `bazel run`.

An image's bytes are spread over files from several actions (and, for an index, several
configurations) plus the base's OCI layout. `sources` gathers them; the neutral
starlark/ko.bzl turns their paths into rko's --root/--blob/--layer/--blobs arguments.
"""

load("//starlark:ko.bzl", "layout_args", "tarball_args")
load(":toolchain_type.bzl", "TOOLCHAIN_KWARGS")

def image_sources(info):
    """The files of one KoImageInfo."""
    return struct(
        root = info.descriptor,
        blobs = [info.manifest, info.config],
        layers = info.layers,
        bases = [info.base],
    )

def index_sources(info):
    """The files of a KoIndexInfo and all its images."""
    blobs = [info.index]
    layers = []
    bases = []
    seen = {}
    for img in info.images:
        blobs.extend([img.manifest, img.config])
        layers.extend(img.layers)
        key = img.base.dir or img.base.spec
        if key not in seen:
            seen[key] = True
            bases.append(img.base)
    return struct(root = info.descriptor, blobs = blobs, layers = layers, bases = bases)

def source_files(sources):
    """depset[File] of everything the sources name."""
    direct = [sources.root] + sources.blobs
    for l in sources.layers:
        direct.extend([l.descriptor, l.blob])
    return depset(direct, transitive = [b.metadata for b in sources.bases] + [b.blobs for b in sources.bases])

def metadata_files(sources):
    """depset[File] of the sources without layer bytes: what a push manifest needs."""
    direct = [sources.root] + sources.blobs + [l.descriptor for l in sources.layers]
    return depset(direct, transitive = [b.metadata for b in sources.bases])

def source_paths(sources, staged = None):
    """The neutral dict for starlark/ko.bzl sources_args.

    staged: None for exec paths, or a dict exec path -> path to use instead (from stage()).
    """
    m = staged or {}
    return {
        "root": m.get(sources.root.path, sources.root.path),
        "blobs": [m.get(b.path, b.path) for b in sources.blobs],
        "layers": [[m.get(l.descriptor.path, l.descriptor.path), m.get(l.blob.path, l.blob.path)] for l in sources.layers],
        "blob_dirs": [m.get(b.dir, b.dir) for b in sources.bases if b.dir],
    }

def insecure_registries(sources):
    regs = []
    for b in sources.bases:
        for r in b.insecure_registries:
            if r not in regs:
                regs.append(r)
    return regs

def output_group_actions(ctx, rko, sources):
    """Declares the KoTarball and KoLayout actions; returns the output groups."""
    tarball = ctx.actions.declare_file(ctx.label.name + ".tar")
    inputs = source_files(sources)
    paths = source_paths(sources)
    regs = insecure_registries(sources)

    # A shallow base's layers stream from its registry while these run.
    shallow = [b for b in sources.bases if b.dir and not b.blobs.to_list()]
    requirements = {"requires-network": "1"} if shallow else {}
    ctx.actions.run(
        executable = rko,
        arguments = tarball_args(paths, [], tarball.path, regs),
        inputs = inputs,
        outputs = [tarball],
        mnemonic = "KoTarball",
        execution_requirements = requirements,
        progress_message = "KoTarball %s" % ctx.label,
        **TOOLCHAIN_KWARGS
    )
    layout = ctx.actions.declare_directory(ctx.label.name + ".layout")
    ctx.actions.run(
        executable = rko,
        arguments = layout_args(paths, layout.path, regs),
        inputs = inputs,
        outputs = [layout],
        mnemonic = "KoLayout",
        execution_requirements = requirements,
        progress_message = "KoLayout %s" % ctx.label,
        **TOOLCHAIN_KWARGS
    )
    return {"tarball": depset([tarball]), "layout": depset([layout])}

def stage(ctx, sources):
    """Places every image file in runfiles under <package>/<name>.files/, one name each.

    An index's images come from several configurations whose files share short paths, so
    they cannot simply sit at their short paths in one runfiles tree. Returns a struct:
      symlinks: dict for ctx.runfiles(symlinks = ...), workspace-relative
      staged: dict exec path (of a file or base dir) -> staged path (relative to the
        runfiles workspace directory)
      path_maps: [[exec path, staged path]] for `rko push-manifest --path-map`
    """
    top = (ctx.label.package + "/" if ctx.label.package else "") + ctx.label.name + ".files"
    symlinks = {}
    staged = {}
    path_maps = []
    files = [sources.root] + sources.blobs
    for l in sources.layers:
        files.extend([l.descriptor, l.blob])
    for i, f in enumerate(files):
        if f.path in staged:
            continue
        to = "%s/%d-%s" % (top, i, f.basename)
        staged[f.path] = to
        symlinks[to] = f
        path_maps.append([f.path, to])
    for i, b in enumerate(sources.bases):
        if not b.dir or b.dir in staged:
            continue
        to = "%s/base%d" % (top, i)
        staged[b.dir] = to
        path_maps.append([b.dir, to])
        for f in b.metadata.to_list() + b.blobs.to_list():
            symlinks[to + f.path[len(b.dir):]] = f
    return struct(
        symlinks = symlinks,
        staged = staged,
        path_maps = path_maps,
    )

def launcher(ctx, rko, args):
    """An executable script that runs rko from this target's runfiles with args (and "$@").

    It runs in the runfiles workspace directory, where a short_path (../<repo>/... for other
    repositories) and the staged paths resolve.
    """
    script = ctx.actions.declare_file(ctx.label.name + ".sh")
    quoted = " ".join([_shell_quote(a) for a in args])
    ctx.actions.write(
        output = script,
        is_executable = True,
        content = """#!/usr/bin/env bash
# Generated by rules_ko for {label}.
set -euo pipefail
if [[ -d "$0.runfiles/{ws}" ]]; then
  cd "$0.runfiles/{ws}"
elif [[ -n "${{RUNFILES_DIR:-}}" && -d "$RUNFILES_DIR/{ws}" ]]; then
  cd "$RUNFILES_DIR/{ws}"
else
  echo "rules_ko: cannot find the runfiles of {label} (looked in $0.runfiles); run it with bazel run" >&2
  exit 1
fi
exec {rko} {args} "$@"
""".format(label = ctx.label, ws = ctx.workspace_name, rko = _shell_quote(rko.short_path), args = quoted),
    )
    return script

def _shell_quote(s):
    return "'" + s.replace("'", "'\\''") + "'"
