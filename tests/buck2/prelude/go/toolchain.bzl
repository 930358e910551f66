"""prelude//go:toolchain.bzl, reduced to the fields the contract's go_binary reads."""

GoDistrInfo = provider(fields = {
    "go_root": provider_field(typing.Any),
    "version": provider_field(str),
})

GoToolchainInfo = provider(fields = {
    "env_go_os": provider_field(str),
    "env_go_arch": provider_field(str),
    "env_go_arm": provider_field(str | None, default = None),
})
