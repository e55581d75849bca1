# shellcheck shell=bash
# Taking the cluster down (sourced by cluster.sh): best effort at every step, so that it also
# cleans up after a crashed `up` or a killed test. It ends only processes this cluster started
# (recorded pids, and the shims and sandboxes of its own containerd socket and runsc root), and
# removes only what the cluster made: anything that existed before the first `up` is left as it
# was (recorded in $STATE/host-before).

# stop_components SIGNAL NAME...: signals the recorded components at once, waits up to 15 s for
# all of them to exit, then kills those left.
stop_components() {
  local sig=$1 name pid deadline left
  shift
  local pids=() starts=()
  for name in "$@"; do
    pid=$(pid_of "$name") || continue
    pids+=("$pid")
    starts+=("$(proc_start "$pid")")
    kill -"$sig" "$pid" 2>/dev/null || true
  done
  deadline=$(($(now_ms) + 15000))
  while :; do
    left=()
    local i
    for i in "${!pids[@]}"; do
      [ "$(proc_start "${pids[$i]}")" = "${starts[$i]}" ] && left+=("${pids[$i]}")
    done
    [ ${#left[@]} -eq 0 ] && return 0
    if [ "$(now_ms)" -gt "$deadline" ]; then
      log "still running after SIG$sig: ${left[*]}: killing them"
      kill -KILL "${left[@]}" 2>/dev/null || true
      return 0
    fi
    sleep 0.05
  done
}

# own_pids PATTERN: pids of processes whose command line contains PATTERN (a path of this
# cluster's, so only its own shims and sandboxes match).
own_pids() {
  grep -lsaF -- "$1" /proc/[0-9]*/cmdline 2>/dev/null | cut -d/ -f3 | grep -vx "$$" || true
}

# stop_sandboxes: every Pod sandbox of this cluster's containerd, through containerd while it
# runs, then through runsc and its state root, then by pid.
stop_sandboxes() {
  local ctr runsc id pid
  ctr=$(bin ctr)
  runsc=$(bin runsc)
  if [ -S "$CONTAINERD_SOCK" ] && [ -x "$ctr" ] && pid_of containerd >/dev/null; then
    for id in $(timeout 10 "$ctr" --address "$CONTAINERD_SOCK" -n k8s.io tasks ls -q 2>/dev/null); do
      timeout 10 "$ctr" --address "$CONTAINERD_SOCK" -n k8s.io tasks kill -s SIGKILL "$id" >/dev/null 2>&1 || true
    done
    for id in $(timeout 10 "$ctr" --address "$CONTAINERD_SOCK" -n k8s.io tasks ls -q 2>/dev/null); do
      timeout 20 "$ctr" --address "$CONTAINERD_SOCK" -n k8s.io tasks delete -f "$id" >/dev/null 2>&1 || true
    done
  fi
  if [ -x "$runsc" ] && [ -d "$RUN/runsc" ]; then
    local ns
    for ns in "$RUN"/runsc/*/; do
      [ -d "$ns" ] || continue
      for id in $("$runsc" --root "$ns" list -quiet 2>/dev/null); do
        timeout 20 "$runsc" --root "$ns" delete --force "$id" >/dev/null 2>&1 || true
      done
    done
  fi
  # Whatever is left: shims started by this containerd, sandboxes and gofers under this root.
  for pid in $(own_pids "$CONTAINERD_SOCK") $(own_pids "$RUN/runsc"); do
    [ "$pid" = "$$" ] || kill -KILL "$pid" 2>/dev/null || true
  done
}

# kill_stragglers: any process left that runs one of the cluster's own binaries and whose command
# line names the cluster's state paths (a component whose pid record was lost, a client of its
# sockets). A program of someone else's that merely names a path of the cluster (a chalk-server
# started with --kubeconfig $STATE/admin.kubeconfig) is not the cluster's, and is left running.
kill_stragglers() {
  local pid cmd exe
  for pid in $(own_pids "$STATE/") $(own_pids "$RUN/"); do
    cmd=$({ tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null | cut -c1-120) || true
    case "$cmd" in "" | grep\ *) continue ;; esac # gone, or the search itself
    exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || continue
    case "$exe" in
      "$RUN"/* | "$STATE"/* | "$CACHE"/* | /usr/bin/docker-registry) ;; # ours, or Debian's registry
      *)
        log "leaving process $pid, not one of the cluster's binaries ($exe): $cmd"
        continue
        ;;
    esac
    log "killing leftover process $pid: $cmd"
    kill -KILL "$pid" 2>/dev/null || true
  done
  return 0
}

# unmount_under DIR...: every mount point at or below DIR, deepest first (lazily: a mount that
# is still busy goes once its last user does).
unmount_under() {
  local d m
  for d in "$@"; do
    [ -n "$d" ] || continue
    { awk '{print $2}' /proc/self/mounts | grep -E "^$d(/|$)" || true; } | sort -r | while read -r m; do
      umount -l "$m" 2>/dev/null || true
    done
  done
  return 0
}

# clean_iptables TOOL: the rules and chains kube-proxy, the kubelet and the CNI plugins made, and
# our own guard chain, in every table, one iptables-restore transaction per table; nothing else.
clean_iptables() {
  local tool=$1 table rules script
  command -v "$tool" >/dev/null || return 0
  for table in filter nat mangle raw; do
    rules=$("$tool-save" -t "$table" 2>/dev/null) || continue
    script=$(
      # Jumps into our chains from chains that are not ours (the built-in chains), then our
      # chains' rules, then our chains.
      printf '%s\n' "$rules" | grep -E '^-A ' | grep -vE '^-A (KUBE-|CNI-|'"$IPTABLES_CHAIN"' )' |
        grep -E -- '-j (KUBE-[A-Z0-9-]+|CNI-[A-Za-z0-9-]+|'"$IPTABLES_CHAIN"')( |$)' | sed 's/^-A /-D /'
      printf '%s\n' "$rules" | sed -n 's/^:\(KUBE-[^ ]*\|CNI-[^ ]*\|'"$IPTABLES_CHAIN"'\) .*/-F \1/p'
      printf '%s\n' "$rules" | sed -n 's/^:\(KUBE-[^ ]*\|CNI-[^ ]*\|'"$IPTABLES_CHAIN"'\) .*/-X \1/p'
    )
    [ -n "$script" ] || continue
    printf '*%s\n%s\nCOMMIT\n' "$table" "$script" | "$tool-restore" -w --noflush ||
      log "$tool: could not remove the cluster's rules from $table"
  done
}

clean_nftables() {
  command -v nft >/dev/null || return 0
  local t
  for t in "inet kube-network-policies" "ip kube-proxy" "ip6 kube-proxy"; do
    # shellcheck disable=SC2086 # family and name
    nft list table $t >/dev/null 2>&1 && nft delete table $t 2>/dev/null
  done
  # The tables iptables-nft made for kube-proxy and the kubelet, if they did not exist before and
  # hold nothing now but empty built-in chains (a table someone else uses is never empty).
  [ -f "$STATE/host-before" ] || return 0
  for t in "ip filter" "ip nat" "ip mangle" "ip6 filter" "ip6 nat" "ip6 mangle"; do
    grep -qx "nft-table $t" "$STATE/host-before" && continue
    # shellcheck disable=SC2086
    nft list table $t >/dev/null 2>&1 || continue
    # shellcheck disable=SC2086
    if [ -z "$(nft list table $t 2>/dev/null | grep -vE '^\s*(#.*|table .*\{|chain [A-Z]+ \{|type .* policy accept;|\}|)$')" ]; then
      # shellcheck disable=SC2086
      nft delete table $t 2>/dev/null || true
    fi
  done
  return 0
}

clean_links() {
  local l
  for l in $(ip -o link show master "$POD_BRIDGE" 2>/dev/null | awk -F': ' '{print $2}' | sed 's/@.*//'); do
    ip link del "$l" 2>/dev/null || true
  done
  ip link del "$POD_BRIDGE" 2>/dev/null || true
  ip link del "$NODE_LINK" 2>/dev/null || true
}

clean_cgroups() {
  local c pid
  for c in /sys/fs/cgroup/*/"$CGROUP_PARENT"; do
    [ -d "$c" ] || continue
    # Processes still in the cluster's cgroups are its own Pods' (gVisor sandboxes).
    for pid in $(find "$c" -name cgroup.procs -exec cat {} + 2>/dev/null); do
      kill -KILL "$pid" 2>/dev/null || true
    done
    find "$c" -depth -type d -exec rmdir {} + 2>/dev/null || true
    [ -d "$c" ] && log "could not remove cgroup $c"
  done
  return 0
}

# existed PATH: whether PATH existed before the first `up`.
existed() { grep -qx "existed $1" "$STATE/host-before" 2>/dev/null; }

restore_host() {
  local f=$STATE/host-before s v
  # Without the record of the host before `up` (no cluster, or an `up` that stopped before it
  # wrote it), nothing below can be known to be the cluster's: leave it all.
  [ -f "$f" ] || return 0
  if [ -f "$f" ]; then
    while read -r kind s v; do
      [ "$kind" = sysctl ] || continue
      [ "$(sysctl -n "$s" 2>/dev/null)" = "$v" ] && continue
      if [ "$s" = net.ipv4.ip_forward ] && [ -n "$(find /run/chalk-net -maxdepth 1 -regex '.*/[0-9]+' 2>/dev/null)" ]; then
        # The local sandbox runtime has networks up that need forwarding: hand the restore to it
        # (it turns forwarding back off when its last network goes).
        echo "$v" >/run/chalk-net/ip_forward.orig.tmp && mv -n /run/chalk-net/ip_forward.orig.tmp /run/chalk-net/ip_forward.orig
        rm -f /run/chalk-net/ip_forward.orig.tmp
        continue
      fi
      sysctl -qw "$s=$v" 2>/dev/null || log "could not restore $s=$v"
    done <"$f"
  fi
  # Paths the kubelet, containerd and the CNI plugins write outside our state directories.
  existed /var/lib/kubelet || rm -rf --one-file-system /var/lib/kubelet
  existed /var/log/pods || rm -rf --one-file-system /var/log/pods
  if existed /var/log/containers; then
    find /var/log/containers -maxdepth 1 -type l -lname "$STATE/*" -delete 2>/dev/null || true
  else
    rm -rf --one-file-system /var/log/containers
  fi
  existed /run/containerd || { unmount_under /run/containerd; rm -rf --one-file-system /run/containerd; }
  if existed /var/lib/cni; then
    rm -rf /var/lib/cni/results/"$CNI_NETWORK"-* /var/lib/cni/networks/"$CNI_NETWORK" 2>/dev/null || true
  else
    rm -rf --one-file-system /var/lib/cni
  fi
  existed /run/netns || rmdir /run/netns 2>/dev/null || true
}

# step NAME COMMAND...: a teardown step, timed in the log; never fails.
step() {
  local name=$1 t0
  shift
  t0=$(now_ms)
  "$@" || log "$name: incomplete"
  [ "$(($(now_ms) - t0))" -lt 500 ] || log "$name: $(($(now_ms) - t0)) ms"
}

teardown() {
  local t0
  t0=$(now_ms)
  # The node's agents and the control loops first (kube-network-policies' own cleanup waits 5 s
  # after SIGINT; its table is removed below), then the Pods' sandboxes while containerd still
  # runs, then the rest.
  step agents stop_components TERM kube-network-policies kube-proxy kubelet kube-scheduler kube-controller-manager
  step sandboxes stop_sandboxes
  step servers stop_components TERM containerd registry kube-apiserver etcd
  step stragglers kill_stragglers
  step mounts unmount_under "$RUN" "$STATE"
  step iptables clean_iptables iptables
  step ip6tables clean_iptables ip6tables
  step nftables clean_nftables
  step links clean_links
  step cgroups clean_cgroups
  step host restore_host
  [ -n "$STATE" ] && [ "$STATE" != / ] && rm -rf --one-file-system "$STATE"
  [ -n "$RUN" ] && [ "$RUN" != / ] && rm -rf --one-file-system "$RUN"
  log "down in $(($(now_ms) - t0)) ms"
}
