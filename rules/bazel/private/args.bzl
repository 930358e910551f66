"""Renders starlark/ko.bzl argument items as Bazel's ctx.actions.args()."""

load("//starlark:ko.bzl", "is_join", "is_out")

def _add_path(args, f):
    # add_all: Args#add refuses a directory (the layout output, a base's layout); one path
    # it stays, without expansion into its files.
    args.add_all([f], expand_directories = False)

def render(ctx, items):
    """An Args object for ctx.actions.run(arguments = [...]) from ko.bzl's items."""
    args = ctx.actions.args()
    for item in items:
        if is_out(item):
            _add_path(args, item.ko_out)
        elif is_join(item):
            args.add_joined(item.ko_join, join_with = item.ko_sep, expand_directories = False)
        elif type(item) == "string":
            args.add(item)
        else:
            _add_path(args, item)
    return args
