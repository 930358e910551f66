"""The whole-image outputs (tarball, layout) and staging image files for `bazel run`.

An image's bytes are spread over files from several actions (and, for an index, several
configurations) plus the base's OCI layout. `sources` gathers them; the neutral
starlark/ko.bzl turns their paths into rko's --root/--blob/--layer/--blobs arguments.
"""

load("//starlark:ko.bzl", "insecure_registries", "is_each", "is_join", "join", "layout_args", "tarball_args")
load(":args.bzl", "rko_action")

def source_files(sources):
    """depset[File] of everything the sources name."""
    direct = [sources.root] + sources.blobs
    for l in sources.layers:
        direct.extend([l.descriptor, l.blob])
    return depset(direct, transitive = [b.metadata for b in sources.bases] + [b.blobs for b in sources.bases])

def metadata_files(sources):
    """depset[File] of the sources without layer bytes: what a push manifest needs (with
    the documents to attach and the image descriptors they are about)."""
    direct = [sources.root] + sources.blobs + [l.descriptor for l in sources.layers]
    for subject, document in sources.attachments:
        direct.extend([subject, document])
    return depset(direct, transitive = [b.metadata for b in sources.bases])

def runfile(path):
    """A launcher argument: a file at `path` below the runfiles root (an rlocation path)."""
    return struct(rko_runfile = path)

def _is_runfile(item):
    return type(item) == "struct" and hasattr(item, "rko_runfile")

def rlocation(ctx, short_path):
    """The runfiles-root-relative path of a File.short_path-style path of this workspace."""
    if short_path.startswith("../"):
        return short_path[len("../"):]
    return ctx.workspace_name + "/" + short_path

def source_items(sources, staged = None, ctx = None):
    """The neutral dict for starlark/ko.bzl sources_args: Files, or runfile() items.

    staged: None for the files themselves (build actions), or a dict exec path -> path
    relative to the runfiles workspace directory (from stage(), for `bazel run`; ctx then
    names the workspace).
    """
    if staged == None:
        return {
            "root": sources.root,
            "blobs": sources.blobs,
            "layers": [[l.descriptor, l.blob] for l in sources.layers],
            "blob_dirs": [b.dir for b in sources.bases if b.dir],
        }
    return {
        "root": _staged_runfile(ctx, staged, sources.root.path),
        "blobs": [_staged_runfile(ctx, staged, b.path) for b in sources.blobs],
        "layers": [[_staged_runfile(ctx, staged, l.descriptor.path), _staged_runfile(ctx, staged, l.blob.path)] for l in sources.layers],
        "blob_dirs": [_staged_runfile(ctx, staged, b.dir) for b in sources.bases if b.dir],
    }

def _staged_runfile(ctx, staged, path):
    return runfile(rlocation(ctx, staged[path]))

def output_group_actions(ctx, rko, sources):
    """Declares the KoTarball and KoLayout actions; returns the output groups."""
    tarball = ctx.actions.declare_file(ctx.label.name + ".tar")
    inputs = source_files(sources)
    items = source_items(sources)
    regs = insecure_registries(sources)

    # A shallow base's layers stream from its registry while these run: the network.
    network = bool([b for b in sources.bases if b.dir and not b.blobs])
    rko_action(
        ctx,
        rko,
        tarball_args(items, [], tarball, regs),
        network = network,
        inputs = inputs,
        outputs = [tarball],
        mnemonic = "KoTarball",
        progress_message = "KoTarball %s" % ctx.label,
    )
    layout = ctx.actions.declare_directory(ctx.label.name + ".layout")
    rko_action(
        ctx,
        rko,
        layout_args(items, layout, regs),
        network = network,
        inputs = inputs,
        outputs = [layout],
        mnemonic = "KoLayout",
        progress_message = "KoLayout %s" % ctx.label,
    )
    return {"tarball": depset([tarball]), "layout": depset([layout])}

def stage(ctx, sources, layer_blobs = True):
    """Places the image's files in runfiles for `bazel run`, one name each.

    Without layer_blobs (a lazy push) the layers rules_ko made are left out of the
    runfiles, though still named in path_maps: the push reads them from the remote cache.

    An index's images come from several configurations whose files share short paths, so
    the files rules_ko's actions made are linked under <package>/<name>.files/. A base's
    layout is not configured: its files stay at their own runfiles paths (a depset, never
    flattened here). Returns a struct:
      runfiles: the runfiles holding all of it
      staged: dict exec path (of a file or base dir) -> path relative to the runfiles
        workspace directory (File.short_path's form: ../REPO/... in another repository)
      path_maps: [[File or base dir, path relative to <package>/]] for
        `rko push-manifest --path-map`: a push manifest records paths relative to itself,
        and ko_push's manifest sits at <package>/<name>.json in runfiles.
    """
    files_dir = ctx.label.name + ".files"
    top = (ctx.label.package + "/" if ctx.label.package else "") + files_dir
    up = "../" * len(ctx.label.package.split("/")) if ctx.label.package else ""
    symlinks = {}
    staged = {}
    path_maps = []
    files = [sources.root] + sources.blobs
    lazy = []
    for l in sources.layers:
        files.extend([l.descriptor, l.blob])
        if not layer_blobs:
            lazy.append(l.blob.path)

    # The documents attached on push (small: always staged, even for a lazy push).
    files.extend([document for _, document in sources.attachments])
    for i, f in enumerate(files):
        if f.path in staged:
            continue
        name = "%d-%s" % (i, f.basename)
        staged[f.path] = top + "/" + name
        if f.path not in lazy:
            symlinks[top + "/" + name] = f
        path_maps.append([f, files_dir + "/" + name])
    base_files = []
    for b in sources.bases:
        if not b.dir or b.dir in staged:
            continue
        staged[b.dir] = b.short_dir
        path_maps.append([b.dir, up + b.short_dir])
        base_files.extend([b.metadata, b.blobs])
    return struct(
        runfiles = ctx.runfiles(symlinks = symlinks, transitive_files = depset(transitive = base_files)),
        staged = staged,
        path_maps = path_maps,
    )

def _shell_quote(s):
    return "'" + s.replace("'", "'\\''") + "'"

def _shell_part(item):
    if _is_runfile(item):
        return '"$RKO_RUNFILES"/' + _shell_quote(item.rko_runfile)
    return _shell_quote(item)

def _shell_word(item):
    # Starlark has no recursion: a join's parts are runfiles or strings.
    if is_join(item):
        return _shell_quote(item.ko_sep).join([_shell_part(p) for p in item.ko_join])
    return _shell_part(item)

def _shell_words(items):
    words = []
    for item in items:
        if is_each(item):
            for v in item.ko_each:
                words.append(_shell_quote(item.ko_flag))
                words.append(_shell_word(join(v, item.ko_sep) if item.ko_sep else v))
        else:
            words.append(_shell_word(item))
    return words

def launcher(ctx, rko, items):
    """An executable script that runs rko from this target's runfiles with items and "$@".

    items: ko.bzl argument items whose files are runfile() paths. The script (from
    launcher.sh.tpl) finds the runfiles tree the standard way ($RUNFILES_DIR, the tree
    beside $RUNFILES_MANIFEST_FILE, or $0.runfiles) and runs in the caller's directory.
    """
    script = ctx.actions.declare_file(ctx.label.name + ".sh")
    ctx.actions.expand_template(
        template = ctx.file._launcher_template,
        output = script,
        is_executable = True,
        substitutions = {
            "{{LABEL}}": str(ctx.label),
            "{{RKO}}": _shell_quote(rlocation(ctx, rko.short_path)),
            "{{ARGS}}": " \\\n  ".join(_shell_words(items)),
        },
    )
    return script

LAUNCHER_ATTRS = {
    "_launcher_template": attr.label(
        default = Label("//rules/bazel/private:launcher.sh.tpl"),
        allow_single_file = True,
    ),
}
