"""Analysis checks of the rules' actions: mnemonics, argv and inputs, as Bazel registers them.

ko_actions_check fails analysis (and so `bazel build`) with every mismatch listed; it needs
no test runner, which Debian's offline Bazel lacks the coverage tools for.
"""

_ActionsInfo = provider(fields = {"actions": "list[Action]: the target's registered actions"})

def _actions_aspect_impl(target, ctx):
    return [_ActionsInfo(actions = target.actions)]

_actions_aspect = aspect(implementation = _actions_aspect_impl)

def _args(action):
    # argv[0] is the rko tool; the rest is rko's command line.
    return action.argv[1:]

def _has_run(args, run):
    """Whether `run` appears in args as consecutive elements."""
    for i in range(len(args) - len(run) + 1):
        if args[i:i + len(run)] == run:
            return True
    return False

def _ko_actions_check_impl(ctx):
    actions = [a for a in ctx.attr.target[_ActionsInfo].actions if a.mnemonic.startswith("Ko")]
    errors = []
    mnemonics = [a.mnemonic for a in actions]
    if mnemonics != ctx.attr.mnemonics:
        errors.append("mnemonics: expected %s, found %s" % (ctx.attr.mnemonics, mnemonics))
    for mnemonic, runs in ctx.attr.argv_runs.items():
        matching = [a for a in actions if a.mnemonic == mnemonic.split(" ")[0] and (len(mnemonic.split(" ")) == 1 or _args(a)[1] == mnemonic.split(" ")[1])]
        if not matching:
            errors.append("no %s action" % mnemonic)
            continue
        args = _args(matching[0])
        for run in runs:
            words = run.split(" ")
            if not _has_run(args, words):
                errors.append("%s: expected %r in its arguments, found %s" % (mnemonic, run, args))
    for mnemonic in ctx.attr.metadata_only:
        for a in actions:
            if a.mnemonic == mnemonic:
                blobs = [f.path for f in a.inputs.to_list() if f.path.endswith(".tar.gz") or f.path.endswith(".tar.zst")]
                if blobs:
                    errors.append("%s reads layer bytes, expected descriptors only: %s" % (mnemonic, blobs))
    if errors:
        fail("ko_actions_check %s:\n  %s" % (ctx.label, "\n  ".join(errors)))
    out = ctx.actions.declare_file(ctx.label.name + ".ok")
    ctx.actions.write(out, "\n".join(mnemonics) + "\n")
    return [DefaultInfo(files = depset([out]))]

ko_actions_check = rule(
    implementation = _ko_actions_check_impl,
    doc = "Fails analysis unless `target` registers the expected rules_ko actions.",
    attrs = {
        "target": attr.label(mandatory = True, aspects = [_actions_aspect]),
        "mnemonics": attr.string_list(doc = "The Ko* mnemonics, in registration order."),
        "argv_runs": attr.string_list_dict(doc = "MNEMONIC[ SUBCOMMAND] -> space-separated runs of arguments that must appear in order."),
        "metadata_only": attr.string_list(doc = "Mnemonics whose actions must not read layer blobs."),
    },
)
