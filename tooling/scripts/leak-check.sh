#!/usr/bin/env bash
# Snapshots what tests could leave behind on the host (network namespaces, veth links, mounts,
# iptables and ip6tables rules, loop devices, runsc sandboxes, PTY relays and log writers, cgroups)
# and compares it with an earlier snapshot.
#   leak-check.sh snapshot FILE   record the current state
#   leak-check.sh compare FILE    print what is new since FILE; exit 1 if anything is
set -euo pipefail
state() {
  echo "## netns"; ip netns list 2>/dev/null | awk '{print $1}' | sort
  echo "## links"; ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | sed 's/@.*//' | sort
  echo "## mounts"; awk '{print $2}' /proc/mounts | grep -E 'chalk|runsc|overlay' | sort || true
  echo "## iptables"; { iptables-save 2>/dev/null || true; } | grep -v '^#' | grep -v '^:' | grep -E -i 'chalk|10\.213\.' | sort || true
  echo "## ip6tables"; { ip6tables-save 2>/dev/null || true; } | grep -v '^#' | grep -v '^:' | grep -i 'chalk' | sort || true
  echo "## loop devices"; { losetup --list --noheadings --output BACK-FILE 2>/dev/null || true; } | sed 's/ *$//' | sort
  echo "## cgroups"; find /sys/fs/cgroup -mindepth 3 -maxdepth 3 -type d -path '*/chalk/*' 2>/dev/null | sort || true
  echo "## processes"; pgrep -a 'runsc|chalk-pty-relay|chalk-log-writer' 2>/dev/null | awk '{$1=""; print}' | sort || true
}
case "${1:-}" in
  snapshot) state >"$2" ;;
  compare)
    now=$(mktemp)
    state >"$now"
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
