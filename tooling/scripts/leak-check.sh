#!/usr/bin/env bash
# Snapshots what tests could leave behind on the host (network namespaces, links, mounts,
# iptables and ip6tables rules and chains, nftables tables, loop devices, runsc sandboxes, PTY relays
# and log writers, the test cluster's processes, cgroups, the paths the kubelet, containerd and CNI
# write, and the sysctls the cluster sets) and compares it with an earlier snapshot.
#   leak-check.sh snapshot FILE   record the current state
#   leak-check.sh compare FILE    print what is new since FILE; exit 1 if anything is
# With LEAK_CHECK_ONLY=REGEX, only state lines matching REGEX count (a test's own view, on a
# machine where others work at the same time).
set -euo pipefail

# The test cluster's processes (tooling/cluster): its binaries by name.
cluster_procs='(^|/)(etcd|kube-apiserver|kube-controller-manager|kube-scheduler|kubelet|kube-proxy|kube-network-policies|containerd|containerd-shim-runsc-v1|docker-registry)( |$)'

firewall() {
  local tool=$1
  command -v "$tool-save" >/dev/null || return 0
  { "$tool-save" 2>/dev/null || true; } | grep -v '^#' | grep -E -i 'chalk|10\.21[3-6]\.|KUBE-|CNI-' |
    sed 's/\[[0-9]*:[0-9]*\]$//' | sed "s/^/$tool /" | sort || true
}

state() {
  echo "## netns"; ip netns list 2>/dev/null | awk '{print $1}' | sort
  echo "## links"; ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | sed 's/@.*//' | sort
  echo "## addresses"; ip -o addr show 2>/dev/null | awk '{print $2, $4}' | grep -E ' 10\.21[3-6]\.' | sort || true
  echo "## mounts"
  awk '{print $2}' /proc/mounts | grep -E 'chalk|runsc|overlay|kubelet|containerd|/var/lib/cni|/run/netns/cni-' | sort || true
  echo "## iptables"; firewall iptables; firewall ip6tables
  echo "## loop devices"; { losetup --list --noheadings --output BACK-FILE 2>/dev/null || true; } | sed 's/ *$//' | sort
  echo "## nftables"; { nft list tables 2>/dev/null || true; } | grep -v -E '^table (ip|ip6|inet|bridge|arp) (filter|nat|mangle|raw|security)$' | sort || true
  echo "## cgroups"
  find /sys/fs/cgroup -mindepth 2 -maxdepth 3 -type d \( -path '*/chalk/*' -o -name 'chalk-cluster' -o -name kubepods \) 2>/dev/null | sort || true
  echo "## processes"
  pgrep -a 'runsc|chalk-pty-relay|chalk-log-writer' 2>/dev/null | awk '{$1=""; print}' | sort || true
  ps -eo args= 2>/dev/null | awk '{print $1}' | grep -E "$cluster_procs" | sort || true
  echo "## paths"
  # (/run/netns is not here: `ip netns add` makes it and leaves it, by design.)
  for p in /var/lib/kubelet /var/log/pods /var/log/containers /run/containerd /var/lib/cni \
    /var/lib/chalk-cluster /run/chalk-cluster /opt/containerd /var/run/nri /etc/cni /opt/cni; do
    [ -e "$p" ] && echo "$p"
  done
  echo "## sysctls"
  for s in net.ipv4.ip_forward net.ipv4.conf.all.route_localnet net.bridge.bridge-nf-call-iptables \
    vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops kernel.keys.root_maxkeys \
    kernel.keys.root_maxbytes; do
    echo "$s=$(sysctl -n "$s" 2>/dev/null)"
  done
}

filtered_state() {
  if [ -n "${LEAK_CHECK_ONLY:-}" ]; then state | grep -E "^## |${LEAK_CHECK_ONLY}" || true; else state; fi
}

case "${1:-}" in
  snapshot) filtered_state >"$2" ;;
  compare)
    now=$(mktemp)
    filtered_state >"$now"
    leaked=$(diff "$2" "$now" | grep '^>' || true)
    rm -f "$now"
    if [ -n "$leaked" ]; then
      echo "leak-check: the tests left these behind:" >&2
      echo "$leaked" >&2
      exit 1
    fi
    echo "leak-check: the machine is as the tests found it"
    ;;
  *) echo "usage: leak-check.sh snapshot|compare FILE" >&2; exit 2 ;;
esac
