#!/usr/bin/env bash
# The single-node Kubernetes test cluster (Pods in gVisor): up, down, status, env, release.
# The logic and its README are in tooling/cluster/.
exec bash "$(dirname "$0")/../cluster/cluster.sh" "$@"
