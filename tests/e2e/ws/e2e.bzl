"""Where the end-to-end tests' registry, mirror and base are; the tests rewrite this file."""

E2E_REGISTRY = "127.0.0.1:5000"
E2E_MIRROR = "127.0.0.1:5001"
E2E_BASE_DIGEST = "sha256:0000000000000000000000000000000000000000000000000000000000000000"
