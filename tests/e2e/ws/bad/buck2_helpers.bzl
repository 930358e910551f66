"""Small Buck2 rules the bad-configuration cases need."""

def _two_files_impl(ctx: AnalysisContext) -> list[Provider]:
    a = ctx.actions.write("a", "a")
    b = ctx.actions.write("b", "b")
    return [DefaultInfo(default_outputs = [a, b])]

# Two default outputs: not one Go executable.
two_files = rule(impl = _two_files_impl, attrs = {})

def _generated_impl(ctx: AnalysisContext) -> list[Provider]:
    return [DefaultInfo(default_output = ctx.actions.write(ctx.attrs.out, "generated"))]

# A generated file (of this target's package).
generated = rule(impl = _generated_impl, attrs = {"out": attrs.string()})
