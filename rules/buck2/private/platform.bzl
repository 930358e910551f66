"""OCI platforms as Buck2 constraints, and the split transition of ko_image_index.

Each OCI platform rules_ko knows is a set of constraint values: the prelude's OS
(prelude//os/constraints:linux or :windows), the prelude's CPU, and rules_ko's own CPU constraint
(rules_ko//rules/buck2:cpu) for the CPUs the prelude's lacks (ppc64le, s390x), where the
prelude's CPU is then `unspecified`. The transition sets all three, so no configuration
matches two platforms.
"""

load("//starlark:ko.bzl", "PLATFORMS", "check_index_platforms")
load(":providers.bzl", "KoPlatformInfo")

_PRELUDE_OS = "prelude//os/constraints:%s"
_PRELUDE_CPU = "prelude//cpu/constraints:cpu[%s]"
_OWN_CPU = "rules_ko//rules/buck2:cpu[%s]"

# OCI arch[/variant] -> (the prelude's CPU value, rules_ko's own CPU value).
_CPUS = {
    "amd64": ("x86_64", "none"),
    "arm64": ("arm64", "none"),
    "arm/v7": ("arm32", "none"),
    "386": ("x86_32", "none"),
    "riscv64": ("riscv64", "none"),
    "ppc64le": ("unspecified", "ppc64le"),
    "s390x": ("unspecified", "s390x"),
}

# The values of rules_ko//rules/buck2:cpu (rules/buck2/BUCK declares it).
OWN_CPU_VALUES = ["none", "ppc64le", "s390x"]

def constraint_values(platform: str) -> list[str]:
    """The constraint value labels of an OCI platform rules_ko knows."""
    os, _, arch = platform.partition("/")
    prelude_cpu, own_cpu = _CPUS[arch]
    return [_PRELUDE_OS % os, _PRELUDE_CPU % prelude_cpu, _OWN_CPU % own_cpu]

def platform_select() -> typing.Any:
    """A select() giving the OCI platform of the target configuration, or "".

    Keyed by the prelude's OS, then by the one CPU value that tells a platform of that OS
    apart (the prelude's, or rules_ko's own for the CPUs the prelude lacks).
    """
    by_os = {}
    for p in PLATFORMS.keys():
        os, _, arch = p.partition("/")
        prelude_cpu, own_cpu = _CPUS[arch]
        key = _OWN_CPU % own_cpu if own_cpu != "none" else _PRELUDE_CPU % prelude_cpu
        by_os.setdefault(_PRELUDE_OS % os, {})[key] = p
    branches = {}
    for os_label, by_cpu in by_os.items():
        by_cpu["DEFAULT"] = ""
        branches[os_label] = select(by_cpu)
    branches["DEFAULT"] = ""
    return select(branches)

def _ko_target_platform_impl(ctx: AnalysisContext) -> list[Provider]:
    return [DefaultInfo(), KoPlatformInfo(platform = ctx.attrs.platform)]

ko_target_platform = rule(
    impl = _ko_target_platform_impl,
    doc = "Says which OCI platform the configuration is (its `platform` is a select()).",
    attrs = {
        "platform": attrs.string(doc = "os/arch[/variant], or \"\"."),
    },
)

def _ref_name(label: str) -> str:
    return label.replace("//", "_").replace(":", "_").replace("/", "_").replace("[", "_").replace("]", "")

def _refs() -> dict[str, str]:
    refs = {}
    for p in PLATFORMS.keys():
        for label in constraint_values(p):
            refs[_ref_name(label)] = label
    return refs

def _split_impl(platform: PlatformInfo, refs: struct, attrs: struct) -> dict[str, PlatformInfo]:
    """One configuration per platform: the current one with its OS and CPUs replaced."""
    out = {}
    for p in check_index_platforms("ko_image_index", attrs.platforms):
        constraints = dict(platform.configuration.constraints)
        for label in constraint_values(p):
            value = getattr(refs, _ref_name(label))[ConstraintValueInfo]
            constraints[value.setting.label] = value
        out[p] = PlatformInfo(
            label = "rules_ko_" + p.replace("/", "_"),
            configuration = ConfigurationInfo(constraints = constraints, values = platform.configuration.values),
        )
    return out

# The only split transition of the rules: Buck2 calls the future of split transitions
# unclear, so it stays in this one place.
platforms_split = transition(
    impl = _split_impl,
    refs = _refs(),
    attrs = ["platforms"],
    split = True,
)
