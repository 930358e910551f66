"""Public API of rules_ko for Bazel.

    load("@rules_ko//rules/bazel:defs.bzl", "ko_image", "ko_image_index", "ko_load", "ko_push", "ko_push_all", "ko_resolve")

The ko_base repository rule is in @rules_ko//rules/bazel:base.bzl (load it in WORKSPACE);
the toolchain setup in @rules_ko//rules/bazel:repositories.bzl. See README.md.
"""

load("//rules/bazel/private:image.bzl", _ko_image = "ko_image")
load("//rules/bazel/private:index.bzl", _ko_image_index = "ko_image_index")
load("//rules/bazel/private:load.bzl", _ko_load = "ko_load")
load("//rules/bazel/private:providers.bzl", _KoBaseInfo = "KoBaseInfo", _KoImageInfo = "KoImageInfo", _KoIndexInfo = "KoIndexInfo", _KoLayerInfo = "KoLayerInfo", _KoPushInfo = "KoPushInfo")
load("//rules/bazel/private:push.bzl", _ko_push = "ko_push", _ko_push_all = "ko_push_all")
load("//rules/bazel/private:resolve.bzl", _ko_resolve = "ko_resolve")
load("//starlark:ko.bzl", "attr_error", "check_index_platforms", "platform_key")

KoBaseInfo = _KoBaseInfo
KoImageInfo = _KoImageInfo
KoIndexInfo = _KoIndexInfo
KoLayerInfo = _KoLayerInfo
KoPushInfo = _KoPushInfo
ko_load = _ko_load
ko_push = _ko_push
ko_push_all = _ko_push_all
ko_resolve = _ko_resolve

def _is_label(p):
    return type(p) == "Label" or p.startswith("@") or p.startswith("//") or p.startswith(":")

def _platform_targets(platforms):
    """platform() labels for ko_image_index's platforms: labels as they are, "os/arch"
    strings as @rules_ko//platforms:<os>_<arch>."""
    if type(platforms) != "list":
        fail(attr_error(
            "ko_image_index",
            "platforms",
            "a list of platform() labels and \"os/arch\" strings",
            "a %s" % type(platforms),
            "A select() cannot be split per platform here; list the platforms",
        ))
    strings = [p for p in platforms if not _is_label(p)]
    if strings or not platforms:
        # The same checks and messages as the Buck2 rules (unknown, repeated, none).
        check_index_platforms("ko_image_index", strings)
    return [p if _is_label(p) else Label("//platforms:" + platform_key(p)) for p in platforms]

def ko_image_index(name, image, platforms, **kwargs):
    """A multi-platform image index: `image` built once per platform.

    Args:
      name: the target.
      image: a ko_image (with its platform attribute unset).
      platforms: in index order, platform() targets (e.g. "//platforms:linux_arm64_gpu";
        the user's constraints are kept, and the OCI platform comes from the platform's
        @platforms//os and @platforms//cpu constraint values) and/or "os/arch[/variant]"
        strings (e.g. "linux/amd64", built for @rules_ko//platforms:linux_amd64).
      **kwargs: common attributes (visibility, tags, testonly, ...).
    """
    _ko_image_index(name = name, image = image, platforms = _platform_targets(platforms), **kwargs)

def ko_image(name, platforms = None, **kwargs):
    """A Go binary as an image in ko's layout; with platforms, a multi-platform index.

    Args:
      name: the target. With platforms, `name` is the index and `name + ".image"` the
        per-platform image it is built from.
      platforms: for an index, as ko_image_index's: "os/arch" strings (e.g.
        ["linux/amd64", "linux/arm64"]) and/or platform() labels.
      **kwargs: ko_image attributes (binary, importpath, base, kodata, env, ...).
    """
    if platforms == None:
        _ko_image(name = name, **kwargs)
        return
    visibility = kwargs.pop("visibility", None)
    testonly = kwargs.get("testonly", None)
    _ko_image(name = name + ".image", visibility = ["//visibility:private"], **kwargs)
    ko_image_index(name = name, image = ":" + name + ".image", platforms = platforms, visibility = visibility, testonly = testonly)
