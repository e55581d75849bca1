# shellcheck shell=bash
# Bringing the cluster up (sourced by cluster.sh): binaries, host network, cgroups, PKI, configs,
# then each component in order, waiting for each to be ready.

# curl_api PATH: GET PATH from the API server as the cluster admin.
curl_api() {
  curl -sf --max-time 2 --cacert "$STATE/pki/ca.crt" --cert "$STATE/pki/admin.crt" \
    --key "$STATE/pki/admin.key" "https://$NODE_IP:$APISERVER_PORT$1"
}

kubectl_() { "$(bin kubectl)" --kubeconfig "$KUBECONFIG_ADMIN" "$@"; }

# healthy: every component runs and the API server is ready.
healthy() {
  local c
  for c in "${COMPONENTS[@]}"; do pid_of "$c" >/dev/null || return 1; done
  curl_api /readyz >/dev/null
}

status() {
  local c pid up=0
  for c in "${COMPONENTS[@]}"; do
    if pid=$(pid_of "$c"); then printf '%-24s running (pid %s)\n' "$c" "$pid"; else printf '%-24s stopped\n' "$c"; up=1; fi
  done
  if [ "$up" = 0 ] && curl_api /readyz >/dev/null; then
    kubectl_ get nodes -o wide 2>/dev/null || true
    echo "KUBECONFIG=$KUBECONFIG_ADMIN"
  else
    echo "the cluster is not up"
    return 1
  fi
}

# resolve_binaries: builds whatever is missing (build.sh caches by version) and links every binary
# into $RUN/bin, which is also containerd's PATH for the gVisor shim.
resolve_binaries() {
  local t0 d b
  t0=$(now_ms)
  mkdir -p "$RUN/bin"
  for d in "$(bash "$here/build.sh" kubernetes)" "$(bash "$here/build.sh" etcd)" \
    "$(bash "$here/build.sh" containerd)" "$(bash "$here/build.sh" netpol)" \
    "$(bash "$here/build.sh" pause)"; do
    for b in "$d"/*; do [ -x "$b" ] && ln -sf "$b" "$RUN/bin/$(basename "$b")"; done
  done
  ln -sf "$(bash "$here/../gvisor/build.sh" runsc)" "$RUN/bin/runsc"
  ln -sf "$(bash "$here/../gvisor/build.sh" shim)" "$RUN/bin/containerd-shim-runsc-v1"
  log "binaries ready in $(($(now_ms) - t0)) ms"
}

# record_host: what the host looked like before, so that teardown restores exactly that.
record_host() {
  local f=$STATE/host-before
  [ -f "$f" ] && return 0
  mkdir -p "$STATE"
  {
    local s
    for s in net.ipv4.ip_forward net.bridge.bridge-nf-call-iptables net.bridge.bridge-nf-call-ip6tables \
      vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops kernel.keys.root_maxkeys \
      kernel.keys.root_maxbytes; do
      echo "sysctl $s $(sysctl -n "$s")"
    done
    for d in /var/lib/kubelet /var/log/pods /var/log/containers /run/containerd /var/lib/cni /run/netns; do
      [ -e "$d" ] && echo "existed $d"
    done
    # The nftables tables iptables-nft makes on first use (kube-proxy and the kubelet use nat,
    # mangle and filter, for IPv4 and IPv6).
    nft list tables 2>/dev/null | sed 's/^table /nft-table /'
    true
  } >"$f"
}

host_network() {
  if ! ip link show "$NODE_LINK" >/dev/null 2>&1; then
    ip link add "$NODE_LINK" type bridge
  fi
  ip addr replace "$NODE_IP/32" dev "$NODE_LINK"
  ip link set "$NODE_LINK" up
  # The Pods' bridge exists from the start with its gateway address (the CNI bridge plugin takes
  # it as it is), and the Service range is routed to the node's own bridge, which has no ports:
  # until kube-proxy has programmed a ClusterIP (and for one it never will), the node's packets
  # for the test networks go nowhere instead of out through the default route.
  if ! ip link show "$POD_BRIDGE" >/dev/null 2>&1; then
    ip link add "$POD_BRIDGE" type bridge
  fi
  ip addr replace "$POD_GATEWAY/${POD_CIDR#*/}" dev "$POD_BRIDGE"
  ip link set "$POD_BRIDGE" up
  ip route replace "$SERVICE_CIDR" dev "$NODE_LINK" src "$NODE_IP"
  # IPv4 only: no link-local addresses or router solicitations on the test networks.
  sysctl -qw "net.ipv6.conf.$NODE_LINK.disable_ipv6=1" "net.ipv6.conf.$POD_BRIDGE.disable_ipv6=1"
  # Pods reach one another, the node, and Services; routed traffic between Pods through a
  # ClusterIP needs forwarding (the CNI bridge plugin turns it on as well). Teardown restores it.
  sysctl -qw net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1
  # The Pod network is closed at the node: no connection from a Pod leaves it (no masquerade
  # either; the tests talk only to the node and to Pods), and none from elsewhere (another
  # interface, say a local sandbox's veth) enters it through forwarding; the node itself reaches
  # Pods directly, not through FORWARD. In mangle, which runs before filter, so that no ACCEPT of
  # another chain in filter/FORWARD can come first.
  local ipt=(iptables -w -t mangle)
  "${ipt[@]}" -N "$IPTABLES_CHAIN" 2>/dev/null || "${ipt[@]}" -F "$IPTABLES_CHAIN"
  "${ipt[@]}" -A "$IPTABLES_CHAIN" -s "$POD_CIDR" -d "$POD_CIDR" -j RETURN
  "${ipt[@]}" -A "$IPTABLES_CHAIN" -m conntrack --ctstate ESTABLISHED,RELATED -j RETURN
  "${ipt[@]}" -A "$IPTABLES_CHAIN" -s "$POD_CIDR" -m comment --comment "chalk-cluster: Pods reach only the test networks" -j DROP
  "${ipt[@]}" -A "$IPTABLES_CHAIN" -d "$POD_CIDR" -m comment --comment "chalk-cluster: only the node and Pods reach Pods" -j DROP
  "${ipt[@]}" -C FORWARD -j "$IPTABLES_CHAIN" 2>/dev/null || "${ipt[@]}" -I FORWARD 1 -j "$IPTABLES_CHAIN"
}

host_cgroups() {
  local c
  for c in /sys/fs/cgroup/*/; do
    [ "$(basename "$c")" = unified ] && continue
    mkdir -p "$c$CGROUP_PARENT"
  done
}

bootstrap_objects() {
  kubectl_ apply -f - >/dev/null <<YAML
apiVersion: node.k8s.io/v1
kind: RuntimeClass
metadata:
  name: $RUNTIME_CLASS
handler: $RUNTIME_HANDLER
---
# The API server's client certificate for the kubelet API (logs, exec, port-forward), which the
# kubelet authorizes through a SubjectAccessReview.
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: chalk:kube-apiserver-kubelet-client
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: system:kubelet-api-admin
subjects:
- apiGroup: rbac.authorization.k8s.io
  kind: User
  name: kube-apiserver-kubelet-client
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: chalk:kube-network-policies
rules:
- apiGroups: [""]
  resources: [pods, namespaces, nodes]
  verbs: [get, list, watch]
- apiGroups: [networking.k8s.io]
  resources: [networkpolicies]
  verbs: [get, list, watch]
- apiGroups: ["", events.k8s.io]
  resources: [events]
  verbs: [create, patch, update]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: chalk:kube-network-policies
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: chalk:kube-network-policies
subjects:
- apiGroup: rbac.authorization.k8s.io
  kind: User
  name: chalk:kube-network-policies
YAML
}

# phase NAME COMMAND...: runs a step of `up` and logs how long it took (under set -e: a failing
# command in a step fails `up`).
phase() {
  local name=$1 t0
  shift
  t0=$(now_ms)
  "$@"
  log "$name: $(($(now_ms) - t0)) ms"
}

start_etcd() {
  local p=$STATE/pki
  mkdir -p "$STATE/etcd"
  chmod 700 "$STATE/etcd"
  start etcd "$(bin etcd)" --name "$NODE_NAME" --data-dir "$STATE/etcd" --log-level warn \
    --listen-client-urls "https://127.0.0.1:$ETCD_CLIENT_PORT" \
    --advertise-client-urls "https://127.0.0.1:$ETCD_CLIENT_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "$NODE_NAME=http://127.0.0.1:$ETCD_PEER_PORT" \
    --cert-file "$p/etcd-server.crt" --key-file "$p/etcd-server.key" \
    --client-cert-auth --trusted-ca-file "$p/etcd-ca.crt"
  wait_for etcd 30 curl -sf --max-time 1 --cacert "$p/etcd-ca.crt" --cert "$p/etcd-admin-client.crt" \
    --key "$p/etcd-admin-client.key" "https://127.0.0.1:$ETCD_CLIENT_PORT/health"
}

start_apiserver() {
  local p=$STATE/pki
  start kube-apiserver "$(bin kube-apiserver)" \
    --advertise-address "$NODE_IP" --bind-address "$NODE_IP" --secure-port "$APISERVER_PORT" \
    --etcd-servers "https://127.0.0.1:$ETCD_CLIENT_PORT" --etcd-cafile "$p/etcd-ca.crt" \
    --etcd-certfile "$p/etcd-apiserver-client.crt" --etcd-keyfile "$p/etcd-apiserver-client.key" \
    --client-ca-file "$p/ca.crt" --tls-cert-file "$p/apiserver.crt" --tls-private-key-file "$p/apiserver.key" \
    --kubelet-client-certificate "$p/apiserver-kubelet-client.crt" \
    --kubelet-client-key "$p/apiserver-kubelet-client.key" \
    --kubelet-certificate-authority "$p/ca.crt" --kubelet-preferred-address-types InternalIP \
    --service-cluster-ip-range "$SERVICE_CIDR" \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$p/sa.pub" --service-account-signing-key-file "$p/sa.key" \
    --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \
    --anonymous-auth=false --allow-privileged=false --profiling=false \
    --encryption-provider-config "$p/encryption.yaml"
  wait_for kube-apiserver 60 curl_api /readyz
}

start_registry() {
  mkdir -p "$STATE/registry"
  start registry /usr/bin/docker-registry serve "$STATE/config/registry.yaml"
  wait_for registry 20 curl -sf --max-time 1 "http://$REGISTRY/v2/"
}

# push_pause: the Pod sandbox image, a static binary that waits for a signal (modules/pause),
# as an OCI image made with umoci and pushed with skopeo.
push_pause() {
  local t
  t=$(mktemp -d)
  umoci init --layout "$t/oci" >/dev/null
  umoci new --image "$t/oci:pause" >/dev/null
  umoci insert --image "$t/oci:pause" "$(readlink -f "$(bin pause)")" /pause >/dev/null
  umoci config --image "$t/oci:pause" --config.entrypoint /pause --config.user 65535:65535 >/dev/null
  skopeo copy -q --dest-tls-verify=false "oci:$t/oci:pause" "docker://$PAUSE_IMAGE" >/dev/null
  rm -rf "$t"
}

start_containerd() {
  mkdir -p "$RUN/containerd" "$STATE/containerd/root"
  start containerd env PATH="$RUN/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    "$(bin containerd)" --config "$STATE/config/containerd.toml"
  wait_for containerd 30 "$(bin ctr)" --address "$CONTAINERD_SOCK" version
}

start_control() {
  local p=$STATE/pki
  start kube-controller-manager "$(bin kube-controller-manager)" \
    --kubeconfig "$p/controller-manager.kubeconfig" \
    --authentication-kubeconfig "$p/controller-manager.kubeconfig" \
    --authorization-kubeconfig "$p/controller-manager.kubeconfig" \
    --bind-address 127.0.0.1 --leader-elect=false --use-service-account-credentials \
    --service-account-private-key-file "$p/sa.key" --root-ca-file "$p/ca.crt" \
    --cluster-name chalk-cluster --profiling=false
  start kube-scheduler "$(bin kube-scheduler)" --kubeconfig "$p/scheduler.kubeconfig" \
    --authentication-kubeconfig "$p/scheduler.kubeconfig" \
    --authorization-kubeconfig "$p/scheduler.kubeconfig" \
    --bind-address 127.0.0.1 --leader-elect=false --profiling=false
}

node_ready() {
  kubectl_ get node "$NODE_NAME" \
    -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null | grep -qx True
}

start_kubelet() {
  mkdir -p "$STATE/kubelet" "$STATE/pod-logs"
  start kubelet "$(bin kubelet)" --config "$STATE/config/kubelet.yaml" \
    --kubeconfig "$STATE/pki/kubelet-client.kubeconfig" --hostname-override "$NODE_NAME" \
    --node-ip "$NODE_IP" --root-dir "$STATE/kubelet"
  wait_for kubelet 60 node_ready
}

start_proxy() {
  start kube-proxy "$(bin kube-proxy)" --config "$STATE/config/kube-proxy.yaml"
  start kube-network-policies "$(bin kube-network-policies)" \
    --kubeconfig "$STATE/pki/kube-network-policies.kubeconfig" --hostname-override "$NODE_NAME" \
    --metrics-bind-address 127.0.0.1:10280 --disable-nri --nfqueue-id 1471
  wait_for kube-proxy 30 curl -sf --max-time 1 http://127.0.0.1:10256/healthz
  wait_for kube-network-policies 30 curl -sf --max-time 1 http://127.0.0.1:10280/metrics
}

default_sa() { kubectl_ -n default get serviceaccount default; }

# up: runs in a bash process of its own (cluster.sh __up), so that set -e holds in every step.
up() {
  phase binaries resolve_binaries
  phase host record_host
  phase network host_network
  phase cgroups host_cgroups
  phase pki make_pki
  phase config write_config
  phase etcd start_etcd
  phase kube-apiserver start_apiserver
  phase registry start_registry
  phase pause-image push_pause
  phase containerd start_containerd
  phase control-plane start_control
  phase bootstrap bootstrap_objects
  phase "kubelet (node Ready)" start_kubelet
  phase "kube-proxy, kube-network-policies" start_proxy
  phase "default service account" wait_for sa 60 default_sa
}
