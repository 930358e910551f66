"""Build-system-neutral rules_ko helpers: validation and `rko` argument lists.

The Bazel rules (rules/bazel/private) and the Buck2 rules (rules/buck2/private) load this
file, so both build systems give rko the same arguments and users get the same messages.

It never looks inside a file object. An argument list is a list of items:
  - a string: one argument as it is;
  - a file (Bazel File, Buck2 artifact, or a path string): one argument, the file's path;
  - out(file): an output the action writes (Buck2 needs `.as_output()` there);
  - join(parts, sep): one argument, the parts (strings and files) joined by sep;
  - each(flag, values, sep): for every value, `flag` and then the value (a string or file,
    or a [part, part] pair joined by sep), so a long list (one --file per kodata file)
    stays one item that Bazel adds with Args.add_all(map_each) instead of string by string.
Each adapter renders the list: Bazel with ctx.actions.args() (spilling to a param file
when long), Buck2 with cmd_args().
Files are never turned into strings here: Buck2 artifacts have no `.path` and no `+`.

The dialect is the common subset of Bazel 4.2+ and Buck2 Starlark: no f-strings, no types.
"""

# Platforms rules_ko knows: the OCI platform string, then the constraint names (from the
# `platforms` repository) that mean it, and the Go GOOS/GOARCH/GOARM for it.
PLATFORMS = {
    "linux/amd64": {"os": "linux", "cpu": "x86_64", "goos": "linux", "goarch": "amd64", "goarm": ""},
    "linux/arm64": {"os": "linux", "cpu": "aarch64", "goos": "linux", "goarch": "arm64", "goarm": ""},
    "linux/arm/v7": {"os": "linux", "cpu": "armv7", "goos": "linux", "goarch": "arm", "goarm": "7"},
    "linux/386": {"os": "linux", "cpu": "x86_32", "goos": "linux", "goarch": "386", "goarm": ""},
    "linux/ppc64le": {"os": "linux", "cpu": "ppc", "goos": "linux", "goarch": "ppc64le", "goarm": ""},
    "linux/s390x": {"os": "linux", "cpu": "s390x", "goos": "linux", "goarch": "s390x", "goarm": ""},
    "linux/riscv64": {"os": "linux", "cpu": "riscv64", "goos": "linux", "goarch": "riscv64", "goarm": ""},
    # ko's Windows images (binary and kodata under Files/): they need a Windows base.
    "windows/amd64": {"os": "windows", "cpu": "x86_64", "goos": "windows", "goarch": "amd64", "goarm": ""},
    "windows/arm64": {"os": "windows", "cpu": "aarch64", "goos": "windows", "goarch": "arm64", "goarm": ""},
}

NAMING_STRATEGIES = ["md5", "bare", "base-import-paths", "preserve-import-paths"]

COMPRESSIONS = {"gzip": ".tar.gz", "zstd": ".tar.zst"}

# ko_image's `sbom` attribute: the SBOM formats it makes (`rko sbom --format`), each with
# the suffix of its file. "spdx" is the default, as ko's.
SBOM_CHOICES = {"spdx": ["spdx"], "cyclonedx": ["cyclonedx"], "both": ["spdx", "cyclonedx"], "none": []}
SBOM_SUFFIXES = {"spdx": ".spdx.json", "cyclonedx": ".cyclonedx.json"}

# The builder.id of provenance statements when the rule names none (%s: bazel or buck2).
# A URN, so it claims no host; set `builder_id` to your CI's own id for verifiers to match.
DEFAULT_BUILDER_ID = "urn:rules-ko:builder:%s"

_HEX = "0123456789abcdef"
_TAG_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-"

def platform_key(platform):
    """The platform as a name part: `linux/arm/v7` -> `linux_arm_v7`."""
    return platform.replace("/", "_")

def attr_error(rule, attr, expected, found, fix = ""):
    """A fail() message that names the target and attribute, what was expected and found."""
    msg = "%s: attribute '%s': expected %s, found %s" % (rule, attr, expected, found)
    if fix:
        msg += ". " + fix
    return msg

def check_importpath(rule, value, attr = "importpath"):
    """Returns the import path without a `ko://` scheme; fails on a missing or bad one."""
    if value.startswith("ko://"):
        value = value[len("ko://"):]
    if not value:
        fail(attr_error(
            rule,
            attr,
            "the Go import path of the binary's main package (e.g. \"example.com/app/cmd/foo\")",
            "nothing",
            "ko names the image and the /ko-app/<name> path from it; set %s" % attr,
        ))
    for bad in [" ", "\\", "://", "@", "\t"]:
        if bad in value:
            fail(attr_error(rule, attr, "a Go import path such as \"example.com/app/cmd/foo\"", repr(value), "remove %r" % bad))
    if value.startswith("/") or value.endswith("/"):
        fail(attr_error(rule, attr, "a Go import path without a leading or trailing '/'", repr(value)))
    return value

def is_digest(value):
    """Whether value is `sha256:` and 64 lowercase hex digits."""
    if not value.startswith("sha256:"):
        return False
    hexpart = value[len("sha256:"):]
    if len(hexpart) != 64:
        return False
    for c in hexpart.elems():
        if c not in _HEX:
            return False
    return True

def check_digest(rule, attr, value):
    if not is_digest(value):
        fail(attr_error(
            rule,
            attr,
            "a digest \"sha256:<64 lowercase hex digits>\"",
            repr(value) if value else "none",
            "Pin the base by digest (skopeo inspect docker://IMAGE prints it) so builds are reproducible",
        ))
    return value

def split_reference(rule, attr, image, digest):
    """Splits `image` (HOST/REPO[:TAG][@sha256:...]) and `digest` into (repository, digest).

    A reference without a digest fails: a tag can move, so a build from it is not reproducible.
    """
    repo = image
    pinned = ""
    if "@" in image:
        repo, pinned = image.split("@", 1)
    if pinned and digest and pinned != digest:
        fail(attr_error(rule, "digest", "the digest in '%s' (%s)" % (attr, pinned), digest, "Give the digest once"))
    digest = digest or pinned
    if not digest:
        fail(attr_error(
            rule,
            "digest",
            "the base pinned by digest: digest = \"sha256:...\" or %s = \"HOST/REPO@sha256:...\"" % attr,
            "%r with no digest" % image,
            "A tag can move; run `skopeo inspect docker://%s` and copy its Digest" % image,
        ))
    check_digest(rule, "digest", digest)

    # Drop a tag: the digest is what is pulled.
    slash = repo.rfind("/")
    colon = repo.rfind(":")
    if colon > slash and slash >= 0:
        repo = repo[:colon]
    if not repo or "/" not in repo:
        fail(attr_error(rule, attr, "HOST/REPOSITORY, e.g. \"cgr.dev/chainguard/static\"", repr(image)))
    return repo, digest

def check_platform(rule, attr, value):
    if value not in PLATFORMS:
        fail(attr_error(
            rule,
            attr,
            "one of " + ", ".join(sorted(PLATFORMS.keys())),
            repr(value),
        ))
    return value

def check_one_of(rule, attr, value, allowed):
    if value not in allowed:
        fail(attr_error(rule, attr, "one of " + ", ".join([repr(a) for a in allowed]), repr(value)))
    return value

def check_tag(rule, attr, tag):
    """A tag: 1-128 of [A-Za-z0-9_.-], not starting with '.' or '-'; `{KEY}` stamps allowed."""
    plain = tag
    for _ in range(16):
        open = plain.find("{")
        if open < 0:
            break
        close = plain.find("}", open)
        if close < 0:
            break
        plain = plain[:open] + "x" + plain[close + 1:]
    ok = len(plain) > 0 and len(tag) <= 128 and plain[0] not in ".-"
    for c in plain.elems():
        if c not in _TAG_CHARS:
            ok = False
    if not ok:
        fail(attr_error(
            rule,
            attr,
            "tags of 1-128 letters, digits, '_', '.', '-' (not starting with '.' or '-'), or {STATUS_KEY} placeholders",
            repr(tag),
        ))
    return tag


def check_key_values(rule, attr, values):
    for k in values.keys():
        if not k or "=" in k:
            fail(attr_error(rule, attr, "keys without '='", repr(k)))

def check_mirrors(rule, mirrors):
    """Checks ko_base's `mirrors`: each "HOST=MIRROR" (`rko pull --mirror`), a registry
    HOST[:PORT][/PATH] and the mirror that stands in for it, MIRROR_HOST[:PORT][/PATH],
    without a scheme."""
    for m in mirrors:
        host, sep, mirror = m.partition("=")
        if not sep or not host or not mirror or "://" in m or "=" in mirror:
            fail(attr_error(
                rule,
                "mirrors",
                "HOST=MIRROR entries (e.g. \"docker.io=mirror.example.com\", HOST[:PORT][/PATH] without a scheme)",
                repr(m),
                "Pulls of HOST try each MIRROR first, in the order given, then HOST itself",
            ))

def check_image_attrs(rule, attrs):
    """Checks a ko_image's attributes (Bazel's ctx.attr or Buck2's ctx.attrs: the same
    names); returns the import path without ko://."""
    importpath = check_importpath(rule, attrs.importpath)
    check_one_of(rule, "compression", attrs.compression, sorted(COMPRESSIONS.keys()))
    for attr in ["env", "labels", "annotations"]:
        check_key_values(rule, attr, getattr(attrs, attr))
    if attrs.platform:
        check_platform(rule, "platform", attrs.platform)
    return importpath

def image_options(attrs, base_name):
    """image_args' keyword arguments from a ko_image's attributes."""
    return {
        "env": attrs.env,
        "labels": attrs.labels,
        "annotations": attrs.annotations,
        "user": attrs.user,
        "workdir": attrs.workdir,
        "entrypoint": attrs.entrypoint if attrs.entrypoint else None,
        "cmd": attrs.cmd if attrs.cmd else None,
        "ports": attrs.ports,
        "created": attrs.created,
        "base_name": base_name,
    }

def sbom_formats(rule, value):
    """The SBOM formats a ko_image's `sbom` attribute asks for."""
    check_one_of(rule, "sbom", value, sorted(SBOM_CHOICES.keys()))
    return SBOM_CHOICES[value]

def image_attachments(info):
    """[[image descriptor, document]] pairs: the SBOMs and provenance of one image
    (KoImageInfo), attached to it as OCI referrers when pushed."""
    return [[info.descriptor, d] for d in info.sboms + info.provenance]

def image_sources(info):
    """The files of one image (KoImageInfo): what tarball, layout, load and push read."""
    return struct(
        root = info.descriptor,
        blobs = [info.manifest, info.config],
        layers = info.layers,
        bases = [info.base],
        attachments = image_attachments(info),
    )

def index_sources(info):
    """The files of an index (KoIndexInfo) and all its images; each base once."""
    blobs = [info.index]
    layers = []
    bases = []
    attachments = []
    seen = {}
    for img in info.images:
        blobs.extend([img.manifest, img.config])
        layers.extend(img.layers)

        # One SBOM (and provenance) per platform image, each attached to its own image.
        attachments.extend(image_attachments(img))
        key = "%s|%s|%s" % (img.base.spec, img.base.reference, img.base.digest)
        if key not in seen:
            seen[key] = True
            bases.append(img.base)
    return struct(root = info.descriptor, blobs = blobs, layers = layers, bases = bases, attachments = attachments)

def insecure_registries(sources):
    """The registries the bases of sources are reached over plain HTTP or unverified TLS."""
    regs = []
    for b in sources.bases:
        for r in b.insecure_registries:
            if r not in regs:
                regs.append(r)
    return regs

def check_binary(rule, names):
    """names: the files the `binary` target gives (their short paths). Exactly one."""
    if len(names) != 1:
        fail(attr_error(
            rule,
            "binary",
            "one Go executable (a go_binary target)",
            "%d files: %s" % (len(names), ", ".join(names[:5]) + (" ..." if len(names) > 5 else "")),
            "Point binary at the go_binary itself, not a filegroup",
        ))

def check_base_platform(rule, platform, base_label, base_platforms):
    """base_platforms: the os/arch the base holds, or None for a base that has them all."""
    if base_platforms != None and platform not in base_platforms:
        fail(attr_error(
            rule,
            "base",
            "a base with an image for %s" % platform,
            "%s with only %s" % (base_label, ", ".join(base_platforms)),
            "Add %r to the ko_base's platforms" % platform,
        ))

def unknown_target_platform(rule, platform_label = ""):
    """Fails for a target platform without a known os/cpu; platform_label names it, if known."""
    if platform_label:
        fail(attr_error(
            rule,
            "platform",
            "a target platform whose constraint values rules_ko maps to an OCI platform: " + ", ".join([
                "@platforms//os:%s with @platforms//cpu:%s (%s)" % (c["os"], c["cpu"], p)
                for p, c in sorted(PLATFORMS.items())
            ]),
            "%s, which has none of these os/cpu pairs" % platform_label,
            "Add one pair to the constraint_values of %s, or build for an \"os/arch\" string (ko_image_index platforms, or this rule's platform attribute)" % platform_label,
        ))
    fail(attr_error(
        rule,
        "platform",
        "a target platform rules_ko knows (" + ", ".join(sorted(PLATFORMS.keys())) + ")",
        "a target platform with none of their os/cpu constraints",
        "Set platform = \"linux/amd64\" (or another os/arch), or build for one of rules_ko's platforms",
    ))

def check_index_platforms(rule, platforms):
    """The platforms of an index: known, each once, at least one."""
    if not platforms:
        fail(attr_error(rule, "platforms", "a list of os/arch platforms such as [\"linux/amd64\", \"linux/arm64\"]", "none"))
    seen = {}
    for p in platforms:
        check_platform(rule, "platforms", p)
        if p in seen:
            fail(attr_error(rule, "platforms", "each platform once", "%r twice" % p))
        seen[p] = True
    return platforms

def check_index_image(rule, expected, found):
    if expected != found:
        fail(attr_error(
            rule,
            "image",
            "an image for %s" % expected,
            "one for %s" % found,
            "Leave the ko_image's platform attribute unset so the transition sets it",
        ))

def check_repository(rule, repository):
    """A push repository: HOST[:PORT]/REPOSITORY, no tag or digest."""
    if not repository:
        fail(attr_error(rule, "repository", "HOST[:PORT]/REPOSITORY (e.g. \"ghcr.io/acme/foo\")", "nothing"))
    if "@" in repository or repository.rfind(":") > repository.rfind("/"):
        fail(attr_error(
            rule,
            "repository",
            "HOST[:PORT]/REPOSITORY without a tag or digest",
            repr(repository),
            "Put tags in remote_tags",
        ))
    return repository

def check_repo_tags(rule, repo_tags):
    """NAME:TAG names for `rko load`."""
    if not repo_tags:
        fail(attr_error(rule, "repo_tags", "at least one NAME:TAG for the loaded image (e.g. \"foo:latest\")", "none"))
    for t in repo_tags:
        name, _, tag = t.rpartition(":")
        if not name or "/" in tag:
            fail(attr_error(rule, "repo_tags", "NAME:TAG", repr(t)))
        check_tag(rule, "repo_tags", tag)
    return repo_tags

def check_not_empty(rule, attr, values, expected):
    """A list attribute that needs at least one value (Bazel's allow_empty = False)."""
    if not values:
        fail(attr_error(rule, attr, expected, "none"))
    return values

def check_yaml_srcs(rule, names):
    """ko_resolve's srcs (their short paths): at least one, each .yaml or .yml (Bazel's
    allow_files = [".yaml", ".yml"])."""
    check_not_empty(rule, "srcs", names, "one or more Kubernetes YAML files (.yaml or .yml)")
    for n in names:
        if not (n.endswith(".yaml") or n.endswith(".yml")):
            fail(attr_error(rule, "srcs", "YAML files (.yaml or .yml)", repr(n)))
    return names

def kodata_prefix(package, strip_prefix):
    """The workspace-relative directory whose contents become /var/run/ko."""
    if not strip_prefix:
        return package
    return (package + "/" if package else "") + strip_prefix

def kodata_image_path(rule, path, prefix):
    """Where a kodata file (workspace-relative path) goes under /var/run/ko: below `prefix`."""
    if prefix and not path.startswith(prefix + "/"):
        fail(attr_error(
            rule,
            "kodata",
            "files under %s/ (the image path is the part below it)" % prefix,
            repr(path),
            "Move the file, or set kodata_strip_prefix",
        ))
    return path[len(prefix) + 1:] if prefix else path

# Argument items (see the module docstring).

def out(file):
    """An output file of the action."""
    return struct(ko_out = file)

def join(parts, sep):
    """One argument: parts (strings and files) joined by sep."""
    return struct(ko_join = parts, ko_sep = sep)

def each(flag, values, sep = ""):
    """`flag value` for every value (a string or file, or with sep a [part, part] pair)."""
    return struct(ko_each = values, ko_flag = flag, ko_sep = sep)

def is_out(item):
    return type(item) == "struct" and hasattr(item, "ko_out")

def is_each(item):
    return type(item) == "struct" and hasattr(item, "ko_each")

def is_join(item):
    return type(item) == "struct" and hasattr(item, "ko_join")

def render_strings(items):
    """The arguments as strings, for items whose files are all path strings already."""
    args = []
    for item in items:
        if is_out(item):
            args.append(item.ko_out)
        elif is_join(item):
            args.append(item.ko_sep.join(item.ko_join))
        elif is_each(item):
            for v in item.ko_each:
                args.extend([item.ko_flag, item.ko_sep.join(v) if item.ko_sep else v])
        else:
            args.append(item)
    return args

def compression_args(compression, level):
    args = ["--compression", compression]
    if level:
        args.extend(["--compression-level", str(level)])
    return args

# The platforms ko's debug image supports (Delve's linux/amd64 and linux/arm64); others are
# built without Delve, as ko does.
DEBUG_PLATFORMS = ["linux/amd64", "linux/arm64"]

def debug_layer_wanted(rule, debug, has_dlv, platform):
    """Whether ko_image(debug = True) adds Delve for this platform; fails without dlv."""
    if not debug:
        return False
    if not has_dlv:
        fail(attr_error(
            rule,
            "dlv",
            "a static Delve binary (dlv) for the image's platform when debug = True",
            "none",
            "Set dlv to a dlv built with CGO_ENABLED=0 for the target platform, e.g. a go_binary of github.com/go-delve/delve/cmd/dlv",
        ))
    if platform not in DEBUG_PLATFORMS:
        # buildifier: disable=print
        print("%s: debug = True, but Delve debugs only %s: %s is built without it, as ko does" % (rule, " and ".join(DEBUG_PLATFORMS), platform))
        return False
    return True

def layer_binary_args(binary, importpath, platform, output, descriptor, compression, level, capabilities = [], delve = False):
    """`rko layer binary`: the Go binary at /ko-app/<name>, with ko's linux_capabilities;
    delve: the binary is Delve, for ko's debug image (at /ko-app/dlv)."""
    caps = ["--delve"] if delve else []
    for c in capabilities:
        caps.extend(["--linux-capability", c])
    return [
        "layer",
        "binary",
        "--binary",
        binary,
        "--import-path",
        importpath,
        "--platform",
        platform,
        "-o",
        out(output),
        "--descriptor",
        out(descriptor),
    ] + caps + compression_args(compression, level)

def layer_kodata_args(files, importpath, output, descriptor, compression, level, platform = ""):
    """`rko layer kodata`: files is a list of [image_path, file] pairs under /var/run/ko.

    platform: the image's; a windows/* image gets ko's Windows layout (under Files/), and
    only then is the platform passed, so a Linux kodata action is the same for every
    platform (one cache entry)."""
    args = ["layer", "kodata", "--import-path", importpath, "-o", out(output), "--descriptor", out(descriptor)]
    if platform.startswith("windows/"):
        args.extend(["--platform", platform])
    args.append(each("--file", _literal_pairs(files), "="))
    return args + compression_args(compression, level)

def layer_tar_args(tar, output, descriptor, compression, level):
    """`rko layer tar`: an extra layer rewritten deterministically from a user's tar (plain,
    gzip or zstd). Its descriptor goes to image_args before kodata's: base, extra layers,
    kodata, binary."""
    args = ["layer", "tar", "--tar", tar, "-o", out(output), "--descriptor", out(descriptor)]
    return args + compression_args(compression, level)

def literal(value):
    """A user's string as one rko argument: rko reads an argument starting with '@' as a
    parameter file and `@@` as one literal '@' (src/cli/argfile.rs), so a leading '@' is
    doubled. The same on a command line (Buck2) and in a parameter file (Bazel)."""
    return "@" + value if value.startswith("@") else value

def _literal_pairs(pairs):
    """[image path, file] pairs with the image path as literal() writes it (the pair's
    argument starts with it)."""
    return [[literal(p[0]), p[1]] for p in pairs]

def _key_value_args(flag, values):
    args = []
    for k in sorted(values.keys()):
        args.extend([flag, literal(k + "=" + values[k])])
    return args

def base_arg(base_spec, base_dir, base_digest):
    """`--base`'s value: a built-in base name, or the pulled layout directory @ its digest."""
    if base_dir == None or base_dir == "":
        return base_spec
    return join([base_dir, base_digest], "@")

def image_args(
        base,
        platform,
        layers,
        outputs,
        env = {},
        labels = {},
        annotations = {},
        user = "",
        workdir = "",
        entrypoint = None,
        cmd = None,
        ports = [],
        created = "",
        base_name = ""):
    """`rko image`: config and manifest from the base and the layer descriptors (in order).

    base: base_arg(...). outputs: dict with config, manifest, descriptor, digest files.
    entrypoint/cmd: None keeps ko's default; a list (even empty) sets it.
    """
    args = ["image", "--base", base, "--platform", platform, each("--layer", layers)]
    args.extend(_key_value_args("--env", env))
    args.extend(_key_value_args("--label", labels))
    args.extend(_key_value_args("--annotation", annotations))
    if user:
        args.extend(["--user", literal(user)])
    if workdir:
        args.extend(["--workdir", literal(workdir)])
    if entrypoint != None:
        for a in entrypoint:
            args.extend(["--entrypoint", literal(a)])
    if cmd != None:
        for a in cmd:
            args.extend(["--cmd", literal(a)])
    for p in ports:
        args.extend(["--port", literal(p)])
    if created:
        args.extend(["--created", created])
    if base_name:
        args.extend(["--base-name", base_name])
    args.extend([
        "--config-out",
        out(outputs["config"]),
        "--manifest-out",
        out(outputs["manifest"]),
        "--descriptor-out",
        out(outputs["descriptor"]),
        "--digest-out",
        out(outputs["digest"]),
    ])
    return args

def index_args(image_descriptors, index, descriptor, digest):
    return [
        "index",
        each("--image", image_descriptors),
        "--index-out",
        out(index),
        "--descriptor-out",
        out(descriptor),
        "--digest-out",
        out(digest),
    ]

def sbom_args(binary, importpath, descriptor, config, format, output):
    """`rko sbom`: an SPDX or CycloneDX document from the binary's Go build info, about the
    image descriptor (its created time from config). Reads no layer bytes."""
    return [
        "sbom",
        "--binary",
        binary,
        "--import-path",
        importpath,
        "--image",
        descriptor,
        "--image-config",
        config,
        "--format",
        format,
        "-o",
        out(output),
    ]

def provenance_args(binary, importpath, platform, descriptor, base, base_reference, kodata_dir_files, builder_id, output, layer_tars = []):
    """`rko provenance`: an in-toto SLSA v1 statement about the image from its inputs.

    base: base_arg(...); kodata_dir_files: [[image path, file]] pairs as layer_kodata_args;
    layer_tars: the extra layers' input tars, in image order.
    """
    args = [
        "provenance",
        "--image",
        descriptor,
        "--binary",
        binary,
        "--import-path",
        importpath,
        "--platform",
        platform,
        "--base",
        base,
    ]
    if base_reference:
        args.extend(["--base-ref", base_reference])
    args.append(each("--kodata-file", _literal_pairs(kodata_dir_files), "="))
    args.append(each("--layer", layer_tars))
    return args + ["--builder-id", builder_id, "-o", out(output)]

def sources_args(sources):
    """The blob sources of an image or index, for tarball, layout, load and push-manifest.

    sources: dict with root (descriptor file), blobs (manifest/config/index files), layers
    (list of [descriptor, blob] files) and blob_dirs (OCI layout dirs, e.g. the base's).
    """
    return [
        "--root",
        sources["root"],
        each("--blob", sources["blobs"]),
        each("--layer", sources["layers"], "="),
        each("--blobs", sources["blob_dirs"]),
    ]

def registry_args(insecure_registries):
    args = []
    for r in insecure_registries:
        args.extend(["--insecure-registry", r])
    return args

def tarball_args(sources, tags, output, insecure_registries = []):
    args = ["tarball"] + sources_args(sources)
    for t in tags:
        args.extend(["--tag", t])
    return args + registry_args(insecure_registries) + ["-o", out(output)]

def layout_args(sources, output, insecure_registries = []):
    return ["layout"] + sources_args(sources) + registry_args(insecure_registries) + ["-o", out(output)]

def load_args(sources, tags, insecure_registries = []):
    args = ["load"] + sources_args(sources)
    for t in tags:
        args.extend(["--tag", t])
    return args + registry_args(insecure_registries)

def push_manifest_args(sources, repository, output, importpath = "", naming = "", tags = [], tag_files = [], stamp_files = [], path_maps = [], attachments = []):
    """`rko push-manifest`. With naming, repository is a prefix (ko's KO_DOCKER_REPO).

    The manifest records blob paths relative to itself, so `rko push --manifest M` works
    from any directory; path_maps ([file, path relative to the manifest] pairs) place
    blobs elsewhere (Bazel's runfiles).
    """
    args = ["push-manifest"] + sources_args(sources) + ["--repository", repository]
    if importpath:
        # The manifest records the import path (for `rko resolve`); "bare" naming pushes to
        # repository as given.
        args.extend(["--import-path", importpath, "--naming", naming or "bare"])
    for t in tags:
        args.extend(["--tag", t])
    for f in tag_files:
        args.extend(["--tag-file", f])
    for f in stamp_files:
        args.extend(["--stamp-file", f])
    args.append(each("--path-map", path_maps, "="))

    # SBOMs and provenance: each document with the image it is about (its subject).
    args.append(each("--attach", attachments, "="))
    return args + ["-o", out(output)]

def push_args(manifests, insecure_registries = [], then_print = None):
    """`rko push` of one push manifest or a list of them (one run), at run time.

    then_print: a file (a deployment's resolved YAML) rko copies to stdout after the push,
    its reference lines going to stderr; `--push=false` from the caller only prints.
    """
    if type(manifests) != "list":
        manifests = [manifests]
    args = ["push", each("--manifest", manifests)]
    if then_print:
        args.extend(["--print", then_print])
    return args + registry_args(insecure_registries)

def resolve_args(srcs, manifests, output, tag_refs = False):
    """`rko resolve`: ko:// references in the YAML files srcs become the digests the push
    manifests record, as a build action (no network)."""
    args = ["resolve", each("-f", srcs), each("--image", manifests), "-o", out(output)]
    if tag_refs:
        args.append("--tag-refs")
    return args

def pull_args(reference, output, platforms = [], eager = False, insecure_registries = [], mirrors = []):
    """`rko pull` of a base pinned by digest: ko_base's action (Buck2) or repository rule
    (Bazel). `mirrors` ("HOST=MIRROR") are tried in order before HOST; the pinned digest
    verifies what they serve."""
    args = ["pull", reference, "-o", out(output)]
    for p in platforms:
        args.extend(["--platform", p])
    if eager:
        args.append("--eager")
    for m in mirrors:
        args.extend(["--mirror", m])
    return args + registry_args(insecure_registries)
