# shellcheck shell=bash
# Constants and helpers shared by cluster.sh and its parts (sourced, not run).
#
# Addresses (README.md, "Network"): none is covered by a host route before `up` (this host has
# 192.0.2.0/24 on eth0 and the local sandbox runtime uses 10.213.0.0/16).
NODE_NAME=chalk-node
NODE_IP=10.214.0.1             # on NODE_LINK, as a /32: API server, kubelet, registry
NODE_LINK=chalkk8s-node        # a bridge without ports (this kernel has no dummy interfaces)
POD_CIDR=10.215.0.0/24         # the CNI bridge's subnet; its gateway is the bridge
POD_GATEWAY=10.215.0.1
POD_BRIDGE=chalkk8s-pods       # made by the CNI bridge plugin
SERVICE_CIDR=10.216.0.0/24     # ClusterIPs, reachable from the node through kube-proxy
KUBERNETES_SERVICE_IP=10.216.0.1
APISERVER_PORT=6443
REGISTRY_PORT=5000
ETCD_CLIENT_PORT=23790         # loopback only
ETCD_PEER_PORT=23800           # loopback only
CNI_NETWORK=chalk-cluster
RUNTIME_CLASS=gvisor
RUNTIME_HANDLER=runsc
IPTABLES_CHAIN=CHALK-CLUSTER   # our own guard chain (no traffic from Pods leaves the test networks)

# Where the cluster keeps its state: configuration, PKI, etcd's data, the registry's blobs,
# kubelet's root, logs (STATE, on disk), and sockets, pids and runtime state (RUN, on tmpfs).
STATE=${CHALK_CLUSTER_STATE:-/var/lib/chalk-cluster}
RUN=${CHALK_CLUSTER_RUN:-/run/chalk-cluster}
CACHE=${CHALK_CACHE:-/var/cache/chalk}
KUBECONFIG_ADMIN=$STATE/admin.kubeconfig
CGROUP_PARENT=chalk-cluster    # kubelet's cgroupRoot: /sys/fs/cgroup/<controller>/chalk-cluster
CONTAINERD_SOCK=$RUN/containerd/containerd.sock
REGISTRY=$NODE_IP:$REGISTRY_PORT
PAUSE_IMAGE=$REGISTRY/chalk/pause:1

# Every component, in start order; `down` stops them in reverse.
COMPONENTS=(etcd kube-apiserver registry containerd kube-controller-manager kube-scheduler kubelet kube-proxy kube-network-policies)

log() { printf '\033[1;34m[cluster]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31m[cluster]\033[0m %s\n' "$*" >&2; exit 1; }

# now_ms: wall clock in milliseconds.
now_ms() { date +%s%3N; }

# pid_of NAME: the pid of a component this cluster started, if that very process still runs (its
# start time is recorded beside its pid, so a recycled pid is never taken for ours).
pid_of() {
  local f="$RUN/pids/$1" pid
  [ -f "$f" ] || return 1
  read -r pid start <"$f" || true
  [ -n "$pid" ] && [ "$(proc_start "$pid")" = "$start" ] || return 1
  printf '%s' "$pid"
}

# start NAME COMMAND...: starts COMMAND in its own session in the background, output appended to
# $STATE/logs/NAME.log, and records its pid and start time.
start() {
  local name=$1
  shift
  mkdir -p "$RUN/pids" "$STATE/logs"
  (
    # No descriptor but stdio reaches the component (above all not the lock of cluster.sh, which
    # it would hold for as long as it runs).
    for fd in /proc/"$BASHPID"/fd/*; do
      fd=${fd##*/}
      [ "$fd" -gt 2 ] && eval "exec $fd>&-"
    done
    exec setsid "$@" >>"$STATE/logs/$name.log" 2>&1 </dev/null
  ) &
  local pid=$!
  local t
  t=$(proc_start "$pid")
  [ -n "$t" ] || die "$name exited at once: $(tail -n 5 "$STATE/logs/$name.log")"
  printf '%s %s\n' "$pid" "$t" >"$RUN/pids/$name"
}

# wait_for WHAT TIMEOUT_S COMMAND...: retries COMMAND every 0.1 s until it succeeds.
wait_for() {
  local what=$1 timeout=$2
  shift 2
  local deadline=$(($(now_ms) + timeout * 1000))
  until "$@" >/dev/null 2>&1; do
    if [ "$(now_ms)" -gt "$deadline" ]; then
      log "$what: not ready after $timeout s"
      return 1
    fi
    sleep 0.1
  done
}

# bin NAME: the path of a built binary (see build.sh).
bin() { printf '%s/bin/%s' "$RUN" "$1"; }

# proc_start PID: the process's start time (clock ticks since boot), which tells a live process
# from a later one that reuses its pid; empty when no such process runs.
# A zombie (exited, not yet reaped: PID 1 here reaps late) counts as gone.
proc_start() {
  sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | awk '$1 != "Z" && $1 != "X" { print $20 }'
}
