"""Renders starlark/ko.bzl argument items as Bazel's ctx.actions.args().

Every rko action gets one Args that spills into a parameter file (`@FILE`, one argument
per line, which rko expands) when the command line is long: one --file per kodata file, or
one --layer per layer of a many-platform index. Lists go in with add_all, so Bazel expands
them only when it writes the command line, not during analysis.

No rules_ko rule calls depset.to_list(). What is still walked in analysis are lists, never
depsets: ctx.files.kodata (Bazel holds an attribute's files as a list; every image path is
checked then, so a file outside kodata_strip_prefix fails with the attribute's name), an
index's per-platform images, and in outputs.bzl stage() the few files rules_ko's own
actions made (each needs its own runfiles name); a base's layout files stay depsets.
"""

load("//starlark:ko.bzl", "is_each", "is_join", "is_out")

def _add_path(args, f):
    # add_all: Args#add refuses a directory (the layout output, a base's layout); one path
    # it stays, without expansion into its files.
    args.add_all([f], expand_directories = False)

def _path(v):
    return v if type(v) == "string" else v.path

def _pair_eq(pair):
    # map_each functions are top-level and take one value: each() pairs joined by "=".
    return _path(pair[0]) + "=" + _path(pair[1])

_PAIR_JOINERS = {"=": _pair_eq}

def _add_each(args, item):
    if not item.ko_sep:
        args.add_all(item.ko_each, before_each = item.ko_flag, expand_directories = False)
        return
    joiner = _PAIR_JOINERS.get(item.ko_sep)
    if not joiner:
        fail("rules_ko: each() with separator %r: expected one of %s; add a joiner to rules/bazel/private/args.bzl" % (item.ko_sep, _PAIR_JOINERS.keys()))

    # Args keeps values until execution, so they must be immutable: pairs become tuples.
    args.add_all([tuple(p) for p in item.ko_each], before_each = item.ko_flag, map_each = joiner)

def render(ctx, items):
    """An Args object for ctx.actions.run(arguments = [...]) from ko.bzl's items."""
    args = ctx.actions.args()
    args.use_param_file("@%s", use_always = False)
    args.set_param_file_format("multiline")
    for item in items:
        if is_out(item):
            _add_path(args, item.ko_out)
        elif is_join(item):
            args.add_joined(item.ko_join, join_with = item.ko_sep, expand_directories = False)
        elif is_each(item):
            _add_each(args, item)
        elif type(item) == "string":
            args.add(item)
        else:
            _add_path(args, item)
    return args
