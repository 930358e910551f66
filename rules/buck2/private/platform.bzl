"""OCI platforms as Buck2 constraints, and the split transition of ko_image_index.

Each OCI platform rules_ko knows maps to an OS and a CPU constraint value. The prelude has
no CPU value for ppc64le or s390x: rules_ko declares its own under the prelude's CPU
setting (rules_ko//rules/buck2:cpu_ppc64le, :cpu_s390x).
"""

load("//starlark:ko.bzl", "check_index_platforms")
load(":providers.bzl", "KoPlatformInfo")

OS_CONSTRAINTS = {
    "linux": "prelude//os/constraints:linux",
}

CPU_CONSTRAINTS = {
    "amd64": "prelude//cpu/constraints:x86_64",
    "arm64": "prelude//cpu/constraints:arm64",
    "arm/v7": "prelude//cpu/constraints:arm32",
    "386": "prelude//cpu/constraints:x86_32",
    "riscv64": "prelude//cpu/constraints:riscv64",
    "ppc64le": "rules_ko//rules/buck2:cpu_ppc64le",
    "s390x": "rules_ko//rules/buck2:cpu_s390x",
}

def constraints_of(platform: str) -> (str, str):
    """The (os, cpu) constraint value labels of an OCI platform rules_ko knows."""
    os, _, arch = platform.partition("/")
    return OS_CONSTRAINTS[os], CPU_CONSTRAINTS[arch]

def platform_select() -> typing.Any:
    """A select() giving the OCI platform of the target configuration, or ""."""
    by_os = {}
    for os, os_label in OS_CONSTRAINTS.items():
        by_cpu = {}
        for arch, cpu_label in CPU_CONSTRAINTS.items():
            by_cpu[cpu_label] = os + "/" + arch
        by_cpu["DEFAULT"] = ""
        by_os[os_label] = select(by_cpu)
    by_os["DEFAULT"] = ""
    return select(by_os)

def _ko_target_platform_impl(ctx: AnalysisContext) -> list[Provider]:
    return [DefaultInfo(), KoPlatformInfo(platform = ctx.attrs.platform)]

ko_target_platform = rule(
    impl = _ko_target_platform_impl,
    doc = "Says which OCI platform the configuration is (its `platform` is a select()).",
    attrs = {
        "platform": attrs.string(doc = "os/arch[/variant], or \"\"."),
    },
)

def _split_impl(platform: PlatformInfo, refs: struct, attrs: struct) -> dict[str, PlatformInfo]:
    """One configuration per platform: the current one with its OS and CPU replaced."""
    out = {}
    for p in check_index_platforms("ko_image_index", attrs.platforms):
        constraints = dict(platform.configuration.constraints)
        os, cpu = constraints_of(p)
        for ref in [getattr(refs, _ref_name(os)), getattr(refs, _ref_name(cpu))]:
            value = ref[ConstraintValueInfo]
            constraints[value.setting.label] = value
        out[p] = PlatformInfo(
            label = "rules_ko_" + p.replace("/", "_"),
            configuration = ConfigurationInfo(constraints = constraints, values = platform.configuration.values),
        )
    return out

def _ref_name(label: str) -> str:
    return label.replace("//", "_").replace(":", "_").replace("/", "_")

def _refs() -> dict[str, str]:
    refs = {}
    for label in OS_CONSTRAINTS.values() + CPU_CONSTRAINTS.values():
        refs[_ref_name(label)] = label
    return refs

# The only split transition of the rules: Buck2 calls the future of split transitions
# unclear, so it stays in this one place.
platforms_split = transition(
    impl = _split_impl,
    refs = _refs(),
    attrs = ["platforms"],
    split = True,
)
