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
load(":toolchain_type.bzl", "TOOLCHAIN_KWARGS")

# What every rko action rules_ko runs as a persistent worker asks of Bazel. "supports-workers":
# Bazel's default strategies put `worker` before `sandboxed`, so these actions go to a
# long-lived `rko --persistent_worker` (src/cli/worker.rs) instead of a process and a
# sandbox each; `--strategy=KoLayer=sandboxed` (or --spawn_strategy=sandboxed) opts out,
# and remote execution ignores it. Outputs are the same bytes either way (tested).
WORKER_REQUIREMENTS = {"supports-workers": "1"}

# rko flushes each output to disk before renaming it into place, for people running it by
# hand. A build system needs no such flush: it hashes every output when the action ends and
# re-runs an action whose outputs a crash damaged, and Bazel's own outputs are never
# fsynced. Unflushed, a binary layer costs about half as much. docs/reliability/outputs.md.
ACTION_ENV = {"RKO_FSYNC": "0"}

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

def _argument_values(items):
    """Every argument string of ko.bzl's items (paths for files), in order."""
    values = []
    for item in items:
        if is_out(item):
            values.append(_path(item.ko_out))
        elif is_join(item):
            values.append(item.ko_sep.join([_path(p) for p in item.ko_join]))
        elif is_each(item):
            values.append(item.ko_flag)
            values.extend([
                _pair_eq(v) if type(v) in ("list", "tuple") else _path(v)
                for v in item.ko_each
            ])
        else:
            values.append(_path(item))
    return values

def rko_action(ctx, rko, items, network = False, **kwargs):
    """ctx.actions.run of rko with ko.bzl's items as its arguments.

    The arguments go in a parameter file (one per line, which rko takes verbatim but for a
    leading `@@`: ko.bzl's literal() doubles a user's leading '@' on a command line and here
    alike), unless one holds a newline. Offline, the action runs as a persistent worker with
    ACTION_ENV as its whole environment, unless an argument starts with '@' (Bazel itself
    reads a worker's parameter file, and takes such a line for another file) or the
    parameter file is out. Bazel's own paths and labels never do either; a user's
    string (env, cmd, ...) might. network: the action reads a registry (a shallow base's
    layers): `requires-network`, and the default shell environment, so
    --action_env=HTTPS_PROXY (NO_PROXY, SSL_CERT_FILE, ...) reaches rko; never a worker,
    which would keep one action's environment for the next.
    """
    values = _argument_values(items)
    param_file = not [v for v in values if "\n" in v]
    worker = not network and param_file and not [v for v in values if v.startswith("@")]
    if network:
        requirements = {"requires-network": "1"}
    elif worker:
        requirements = WORKER_REQUIREMENTS
    else:
        requirements = {}
    kwargs.update(TOOLCHAIN_KWARGS)
    ctx.actions.run(
        executable = rko,
        arguments = [render(ctx, items, param_file_always = param_file)],
        execution_requirements = requirements,
        env = {} if network else ACTION_ENV,
        use_default_shell_env = network,
        **kwargs
    )

def render(ctx, items, param_file_always = False):
    """An Args object for ctx.actions.run(arguments = [...]) from ko.bzl's items.
    param_file_always: every argument in the parameter file (a worker needs one)."""
    args = ctx.actions.args()
    args.use_param_file("@%s", use_always = param_file_always)
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
