"""Public API of rules_ko for Buck2.

    load("@rules_ko//rules/buck2:defs.bzl", "ko_image", "ko_image_index", "ko_load", "ko_push")
    load("@rules_ko//rules/buck2:defs.bzl", "ko_push_all", "ko_resolve")

The rules_ko cell must be named `rules_ko`, and the `toolchains//` cell must hold an
rko_toolchain named `rko` (see README.md and examples/buck2).
"""

load("//rules/buck2/private:base.bzl", _ko_base = "ko_base", _ko_builtin_base = "ko_builtin_base")
load("//rules/buck2/private:image.bzl", _ko_image = "ko_image")
load("//rules/buck2/private:index.bzl", _ko_image_index = "ko_image_index")
load("//rules/buck2/private:providers.bzl", _KoBaseInfo = "KoBaseInfo", _KoImageInfo = "KoImageInfo", _KoIndexInfo = "KoIndexInfo", _KoLayerInfo = "KoLayerInfo", _KoPushInfo = "KoPushInfo", _RkoToolchainInfo = "RkoToolchainInfo")
load("//rules/buck2/private:push.bzl", _ko_load = "ko_load", _ko_push = "ko_push", _ko_push_all = "ko_push_all")
load("//rules/buck2/private:resolve.bzl", _ko_resolve = "ko_resolve")
load("//rules/buck2/private:toolchain.bzl", _rko_local_binary = "rko_local_binary", _rko_toolchain = "rko_toolchain")

# Buck2 does not re-export loaded names: each is bound here anew.
KoBaseInfo = _KoBaseInfo
KoImageInfo = _KoImageInfo
KoIndexInfo = _KoIndexInfo
KoLayerInfo = _KoLayerInfo
KoPushInfo = _KoPushInfo
RkoToolchainInfo = _RkoToolchainInfo
ko_base = _ko_base
ko_builtin_base = _ko_builtin_base
ko_image_index = _ko_image_index
ko_load = _ko_load
ko_push = _ko_push
ko_push_all = _ko_push_all
ko_resolve = _ko_resolve
rko_local_binary = _rko_local_binary
rko_toolchain = _rko_toolchain

def ko_image(name: str, platforms: list[str] | None = None, **kwargs):
    """A Go binary as an image in ko's layout; with platforms, a multi-platform index.

    Args:
      name: the target. With platforms, `name` is the index and `name + ".image"` the
        per-platform image it is built from.
      platforms: os/arch strings (e.g. ["linux/amd64", "linux/arm64"]) for an index.
      **kwargs: ko_image attributes (binary, importpath, base, kodata, env, ...).
    """
    if platforms == None:
        _ko_image(name = name, **kwargs)
        return
    visibility = kwargs.pop("visibility", [])
    _ko_image(name = name + ".image", **kwargs)
    _ko_image_index(name = name, image = ":" + name + ".image", platforms = platforms, visibility = visibility)
