"""The ko_base repository rule, for WORKSPACE (load it there; see README.md)."""

load("//rules/bazel/private:base_repository.bzl", _ko_base = "ko_base")

ko_base = _ko_base
