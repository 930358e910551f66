#!/usr/bin/env bash
# Workspace status for the stamping test (bazel build --stamp --workspace_status_command=<abs path>/status.sh).
echo "STABLE_RELEASE v9.8.7"
