"""Public API of rules_ko for Bazel.

    load("@rules_ko//rules/bazel:defs.bzl", "ko_image", "ko_image_index", "ko_load", "ko_push")

The ko_base repository rule is in @rules_ko//rules/bazel:base.bzl (load it in WORKSPACE);
the toolchain setup in @rules_ko//rules/bazel:repositories.bzl. See README.md.
"""

load("//rules/bazel/private:image.bzl", _ko_image = "ko_image")
load("//rules/bazel/private:index.bzl", _ko_image_index = "ko_image_index")
load("//rules/bazel/private:load.bzl", _ko_load = "ko_load")
load("//rules/bazel/private:providers.bzl", _KoBaseInfo = "KoBaseInfo", _KoImageInfo = "KoImageInfo", _KoIndexInfo = "KoIndexInfo", _KoLayerInfo = "KoLayerInfo")
load("//rules/bazel/private:push.bzl", _ko_push = "ko_push")

KoBaseInfo = _KoBaseInfo
KoImageInfo = _KoImageInfo
KoIndexInfo = _KoIndexInfo
KoLayerInfo = _KoLayerInfo
ko_image_index = _ko_image_index
ko_load = _ko_load
ko_push = _ko_push

def ko_image(name, platforms = None, **kwargs):
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
    visibility = kwargs.pop("visibility", None)
    testonly = kwargs.get("testonly", None)
    _ko_image(name = name + ".image", visibility = ["//visibility:private"], **kwargs)
    _ko_image_index(name = name, image = ":" + name + ".image", platforms = platforms, visibility = visibility, testonly = testonly)
