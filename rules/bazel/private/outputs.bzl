"""The whole-image outputs (tarball, layout) and staging image files for `bazel run`.

An image's bytes are spread over files from several actions (and, for an index, several
configurations) plus the base's OCI layout. `sources` gathers them; the neutral
starlark/ko.bzl turns their paths into rko's --root/--blob/--layer/--blobs arguments.
"""

load("//starlark:ko.bzl", "insecure_registries", "layout_args", "render_strings", "tarball_args")
load(":args.bzl", "render")
load(":toolchain_type.bzl", "TOOLCHAIN_KWARGS")

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

def source_items(sources, staged = None):
    """The neutral dict for starlark/ko.bzl sources_args: Files, or staged path strings.

    staged: None for the files themselves (build actions), or a dict exec path -> path
    relative to the runfiles workspace directory (from stage(), for `bazel run`).
    """
    if staged == None:
        return {
            "root": sources.root,
            "blobs": sources.blobs,
            "layers": [[l.descriptor, l.blob] for l in sources.layers],
            "blob_dirs": [b.dir for b in sources.bases if b.dir],
        }
    return {
        "root": staged[sources.root.path],
        "blobs": [staged[b.path] for b in sources.blobs],
        "layers": [[staged[l.descriptor.path], staged[l.blob.path]] for l in sources.layers],
        "blob_dirs": [staged[b.dir] for b in sources.bases if b.dir],
    }

def output_group_actions(ctx, rko, sources):
    """Declares the KoTarball and KoLayout actions; returns the output groups."""
    tarball = ctx.actions.declare_file(ctx.label.name + ".tar")
    inputs = source_files(sources)
    items = source_items(sources)
    regs = insecure_registries(sources)

    # A shallow base's layers stream from its registry while these run.
    shallow = [b for b in sources.bases if b.dir and not b.blobs.to_list()]
    requirements = {"requires-network": "1"} if shallow else {}
    ctx.actions.run(
        executable = rko,
        arguments = [render(ctx, tarball_args(items, [], tarball, regs))],
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
        arguments = [render(ctx, layout_args(items, layout, regs))],
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
      path_maps: [[File or base dir, staged path relative to <package>/]] for
        `rko push-manifest --path-map`: a push manifest records paths relative to itself,
        and ko_push's manifest sits at <package>/<name>.json in runfiles.
    """
    files_dir = ctx.label.name + ".files"
    top = (ctx.label.package + "/" if ctx.label.package else "") + files_dir
    symlinks = {}
    staged = {}
    path_maps = []
    files = [sources.root] + sources.blobs
    for l in sources.layers:
        files.extend([l.descriptor, l.blob])
    for i, f in enumerate(files):
        if f.path in staged:
            continue
        name = "%d-%s" % (i, f.basename)
        staged[f.path] = top + "/" + name
        symlinks[top + "/" + name] = f
        path_maps.append([f, files_dir + "/" + name])
    for i, b in enumerate(sources.bases):
        if not b.dir or b.dir in staged:
            continue
        name = "base%d" % i
        staged[b.dir] = top + "/" + name
        path_maps.append([b.dir, files_dir + "/" + name])
        for f in b.metadata.to_list() + b.blobs.to_list():
            symlinks[top + "/" + name + f.path[len(b.dir):]] = f
    return struct(
        symlinks = symlinks,
        staged = staged,
        path_maps = path_maps,
    )

def launcher(ctx, rko, items):
    """An executable script that runs rko from this target's runfiles with items (and "$@").

    It runs in the runfiles workspace directory, where a short_path (../<repo>/... for other
    repositories) and the staged paths resolve.
    """
    script = ctx.actions.declare_file(ctx.label.name + ".sh")
    quoted = " ".join([_shell_quote(a) for a in render_strings(items)])
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
