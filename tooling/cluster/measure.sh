#!/usr/bin/env bash
# Measures the test cluster's life, ROUNDS times (default 3), and prints a Markdown table of the
# medians and ranges (README.md, "Measured"):
#   bash tooling/cluster/measure.sh [ROUNDS]
# Each round: `down` (nothing left), `up` from empty state (binaries cached), node Ready after
# the kubelet starts, a gVisor Pod created → Running (image already in the registry), the round trip
# of `kubectl exec p -- true` (median of 10), Pod delete (grace period 1 s), and `down`. Takes the
# cluster down at the start and the end: it refuses while someone holds the cluster.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
rounds=${1:-3}
cluster=$here/cluster.sh
[ -z "$(bash "$cluster" holders)" ] || { echo "measure.sh: the cluster is held: $(bash "$cluster" holders | tr '\n' ' ')" >&2; exit 1; }
bash "$here/build.sh" all >/dev/null

ms() { date +%s%3N; }
declare -A samples

record() { samples[$1]+="$2 "; }

median_range() {
  # shellcheck disable=SC2086 # a list of numbers
  printf '%s\n' $1 | sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%d ms (%d–%d)", m, a[1], a[NR]}'
}

for r in $(seq 1 "$rounds"); do
  bash "$cluster" down 2>/dev/null
  t=$(ms)
  env_out=$(bash "$cluster" up 2>"/tmp/chalk-measure-up.$$")
  record up $(($(ms) - t))
  record ready "$(sed -n 's/.*kubelet (node Ready): \([0-9]*\) ms.*/\1/p' "/tmp/chalk-measure-up.$$")"
  eval "$(printf '%s\n' "$env_out" | grep -E '^(KUBECONFIG|CHALK_CLUSTER_[A-Z_]+)=' | sed 's/^/export /')"
  k() { "$CHALK_CLUSTER_KUBECTL" --kubeconfig "$KUBECONFIG" "$@"; }

  # A busybox image in the registry (not timed), then the Pod.
  work=$(mktemp -d)
  mkdir -p "$work/root/bin" && cp /bin/busybox "$work/root/bin/" && ln -s busybox "$work/root/bin/sleep" && ln -s busybox "$work/root/bin/true"
  umoci init --layout "$work/oci" >/dev/null && umoci new --image "$work/oci:i" >/dev/null
  umoci insert --image "$work/oci:i" "$work/root" / >/dev/null
  skopeo copy -q --dest-tls-verify=false --digestfile "$work/digest" "oci:$work/oci:i" "docker://$CHALK_CLUSTER_REGISTRY/measure/busybox:1" >/dev/null
  image="$CHALK_CLUSTER_REGISTRY/measure/busybox@$(cat "$work/digest")"
  rm -rf "$work"
  k create namespace measure >/dev/null
  until k -n measure get serviceaccount default >/dev/null 2>&1; do sleep 0.05; done
  # Pull the image once, so that the Pod start below measures the sandbox, not the pull.
  k -n measure run warm --image "$image" --restart Never --overrides '{"spec":{"runtimeClassName":"gvisor","terminationGracePeriodSeconds":1}}' -- sleep 1 >/dev/null
  until [ "$(k -n measure get pod warm -o 'jsonpath={.status.phase}')" = Succeeded ]; do sleep 0.05; done

  t=$(ms)
  k -n measure run p --image "$image" --restart Never --overrides '{"spec":{"runtimeClassName":"gvisor","terminationGracePeriodSeconds":1}}' -- sleep 3600 >/dev/null
  until [ "$(k -n measure get pod p -o 'jsonpath={.status.phase}')" = Running ]; do sleep 0.02; done
  record pod_running $(($(ms) - t))

  execs=""
  for _ in $(seq 1 10); do
    t=$(ms)
    k -n measure exec p -- true
    execs+="$(($(ms) - t)) "
  done
  record exec "$(median_range "$execs" | cut -d' ' -f1)"

  t=$(ms)
  k -n measure delete pod p --wait=true >/dev/null
  record pod_delete $(($(ms) - t))

  t=$(ms)
  bash "$cluster" down 2>/dev/null
  record down $(($(ms) - t))
  echo "round $r done" >&2
done
rm -f "/tmp/chalk-measure-up.$$"

echo "| step | median (range), $rounds rounds |"
echo "|---|---|"
echo "| whole cluster \`up\` from empty state (binaries cached) | $(median_range "${samples[up]}") |"
echo "| node Ready after the kubelet starts | $(median_range "${samples[ready]}") |"
echo "| gVisor Pod created → Running (image present) | $(median_range "${samples[pod_running]}") |"
echo "| \`kubectl exec p -- true\` round trip (median of 10 per round) | $(median_range "${samples[exec]}") |"
echo "| Pod delete (\`kubectl delete --wait\`, grace 1 s) | $(median_range "${samples[pod_delete]}") |"
echo "| \`down\` with nothing left behind | $(median_range "${samples[down]}") |"
