"""many_files: `count` small generated files under `prefix`/ of this package."""

def _many_files_impl(ctx):
    outs = []
    for i in range(ctx.attr.count):
        f = ctx.actions.declare_file("%s/page-%d.txt" % (ctx.attr.prefix, i))
        ctx.actions.write(f, "page %d\n" % i)
        outs.append(f)
    return [DefaultInfo(files = depset(outs))]

many_files = rule(
    implementation = _many_files_impl,
    attrs = {
        "count": attr.int(mandatory = True),
        "prefix": attr.string(mandatory = True),
    },
)
