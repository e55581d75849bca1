#!/usr/bin/env bash
# The project's single-node Kubernetes test cluster, where every Pod runs in gVisor (README.md).
#
#   cluster.sh up [--holder PID]  build what is missing (cached), start everything, print the env;
#                                 returns at once when the cluster is already healthy. With
#                                 --holder, PID holds the cluster until `release PID`.
#   cluster.sh release [PID]      PID no longer needs the cluster (without PID: forget holders that
#                                 have exited): when no live holder is left and nobody ran a
#                                 plain `up`, the cluster goes down
#   cluster.sh holders            the live holders (`manual` for a plain `up`)
#   cluster.sh down               stop everything this cluster started and remove every side effect
#                                 (also after a crashed `up` or a failed test)
#   cluster.sh status             what runs, and whether the node is Ready (exit 1 when not up)
#   cluster.sh env                the env lines of a running cluster (KUBECONFIG=..., ...)
#
# One cluster per machine: its addresses, ports and state paths are fixed (lib/common.sh), and
# every command takes one machine-wide lock.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib/common.sh
source "$here/lib/common.sh"
# shellcheck source=lib/pki.sh
source "$here/lib/pki.sh"
# shellcheck source=lib/config.sh
source "$here/lib/config.sh"
# shellcheck source=lib/start.sh
source "$here/lib/start.sh"
# shellcheck source=lib/teardown.sh
source "$here/lib/teardown.sh"

[ "$(id -u)" = 0 ] || die "cluster.sh must run as root (it starts a kubelet, containerd and gVisor)"

lock() {
  mkdir -p "$CACHE"
  exec {lockfd}>"$CACHE/cluster.lock"
  flock "$lockfd"
}

env_lines() {
  echo "KUBECONFIG=$KUBECONFIG_ADMIN"
  echo "CHALK_CLUSTER_REGISTRY=$REGISTRY"
  echo "CHALK_CLUSTER_NODE_IP=$NODE_IP"
  echo "CHALK_CLUSTER_NODE_NAME=$NODE_NAME"
  echo "CHALK_CLUSTER_RUNTIME_CLASS=$RUNTIME_CLASS"
  echo "CHALK_CLUSTER_POD_CIDR=$POD_CIDR"
  echo "CHALK_CLUSTER_SERVICE_CIDR=$SERVICE_CIDR"
  echo "CHALK_CLUSTER_STATE=$STATE"
  echo "CHALK_CLUSTER_KUBECTL=$(bin kubectl)"
  echo "CHALK_CLUSTER_ETCDCTL=$(bin etcdctl)"
  echo "CHALK_CLUSTER_RUNSC=$(bin runsc)"
  echo "CHALK_CLUSTER_RUNSC_ROOT=$RUN/runsc/k8s.io"
}

# holders_alive: forgets holders whose process has exited; true when a holder process is left.
holders_alive() {
  local f pid alive=1
  for f in "$RUN"/holders/*; do
    [ -e "$f" ] || continue
    pid=$(basename "$f")
    [ "$pid" = manual ] && continue
    if [ -n "$(proc_start "$pid")" ] && [ "$(proc_start "$pid")" = "$(cat "$f")" ]; then
      alive=0
    else
      rm -f "$f"
    fi
  done
  return $alive
}

cmd=${1:-}
shift || true
case "$cmd" in
  up)
    holder=""
    if [ "${1:-}" = "--holder" ]; then
      holder=${2:?--holder needs a pid}
      [[ $holder =~ ^[0-9]+$ ]] && [ -d "/proc/$holder" ] || die "--holder: no process $holder"
    fi
    lock
    if healthy; then
      log "already up"
    else
      started=$(now_ms)
      if [ -d "$RUN" ] || [ -d "$STATE" ]; then
        log "found a cluster that is not healthy: taking it down first"
        teardown
      fi
      if ! bash "$here/cluster.sh" __up; then
        log "up failed: logs are in $STATE/logs; taking down what started"
        tail -n 20 "$STATE"/logs/*.log >&2 2>/dev/null || true
        teardown
        exit 1
      fi
      log "cluster up in $(($(now_ms) - started)) ms"
    fi
    mkdir -p "$RUN/holders"
    if [ -n "$holder" ]; then
      proc_start "$holder" >"$RUN/holders/$holder"
    else
      touch "$RUN/holders/manual"
    fi
    env_lines
    ;;
  __up)
    up
    ;;
  release)
    pid=${1:-}
    [ -z "$pid" ] || [[ $pid =~ ^[0-9]+$ ]] || die "release: not a pid: $pid"
    lock
    [ -z "$pid" ] || rm -f "$RUN/holders/$pid"
    if [ -d "$RUN" ] && [ ! -e "$RUN/holders/manual" ] && ! holders_alive; then
      log "last holder gone: taking the cluster down"
      teardown
    fi
    ;;
  holders)
    lock
    holders_alive || true
    for f in "$RUN"/holders/*; do [ -e "$f" ] && basename "$f"; done
    exit 0
    ;;
  down)
    lock
    teardown
    ;;
  status)
    status
    ;;
  env)
    healthy || die "the cluster is not up (bash tooling/scripts/cluster.sh up)"
    env_lines
    ;;
  *)
    echo "usage: cluster.sh up [--holder PID] | release [PID] | holders | down | status | env" >&2
    exit 2
    ;;
esac
