# shellcheck shell=bash
# The configuration files of the node's components (sourced by cluster.sh), written into
# $STATE/config at every `up` from the constants in common.sh.

write_config() {
  local c=$STATE/config
  mkdir -p "$c" "$STATE/cni/net.d" "$STATE/containerd/certs.d/$REGISTRY"

  # containerd v2: its own root, state and socket; the CRI plugin runs every Pod in gVisor (runsc
  # is the default runtime and the handler of the RuntimeClass "gvisor"; there is no runc on the
  # node), keeps network namespaces under its state directory, pulls from the registry over plain
  # HTTP (certs.d), and serves exec/attach streams on loopback only.
  cat >"$c/containerd.toml" <<TOML
version = 3
root = "$STATE/containerd/root"
state = "$RUN/containerd/state"
imports = ["$c/containerd.d/*.toml"] # (none; replaces the default /etc/containerd/conf.d)
# opt would create /opt/containerd; NRI would open a machine-wide socket in /var/run/nri.
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.nri.v1.nri"]

[grpc]
  address = "$CONTAINERD_SOCK"

[ttrpc]
  address = "$RUN/containerd/containerd.sock.ttrpc"

[debug]
  address = ""

[metrics]
  address = ""

[plugins]
  [plugins.'io.containerd.cri.v1.images']
    snapshotter = "overlayfs"
    [plugins.'io.containerd.cri.v1.images'.pinned_images]
      sandbox = "$PAUSE_IMAGE"
    [plugins.'io.containerd.cri.v1.images'.registry]
      config_path = "$STATE/containerd/certs.d"

  [plugins.'io.containerd.cri.v1.runtime']
    enable_selinux = false
    restrict_oom_score_adj = true
    netns_mounts_under_state_dir = true
    enable_cdi = false
    tolerate_missing_hugetlb_controller = true
    [plugins.'io.containerd.cri.v1.runtime'.containerd]
      default_runtime_name = "$RUNTIME_HANDLER"
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.$RUNTIME_HANDLER]
        runtime_type = "io.containerd.runsc.v1"
        [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.$RUNTIME_HANDLER.options]
          TypeUrl = "io.containerd.runsc.v1.options"
          ConfigPath = "$c/runsc.toml"
    [plugins.'io.containerd.cri.v1.runtime'.cni]
      bin_dirs = ["/usr/lib/cni"]
      conf_dir = "$STATE/cni/net.d"
      max_conf_num = 1

  [plugins.'io.containerd.grpc.v1.cri']
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
TOML

  # The gVisor shim: the static runsc from tooling/gvisor/build.sh, its state under RUN. Never
  # debug = true here (the sandbox would inherit the shim's output pipe and the shim hang).
  cat >"$c/runsc.toml" <<TOML
binary_name = "$(bin runsc)"
root = "$RUN/runsc"
TOML

  # Plain HTTP to the registry on the node address, for pulls by tag and by digest.
  cat >"$STATE/containerd/certs.d/$REGISTRY/hosts.toml" <<TOML
server = "http://$REGISTRY"

[host."http://$REGISTRY"]
  capabilities = ["pull", "resolve"]
  skip_verify = true
TOML

  # The Pods' bridge is their gateway; no masquerade (Pods reach only the test networks),
  # host-local addresses kept under STATE.
  cat >"$STATE/cni/net.d/10-$CNI_NETWORK.conflist" <<JSON
{
  "cniVersion": "1.0.0",
  "name": "$CNI_NETWORK",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$POD_BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{ "subnet": "$POD_CIDR", "gateway": "$POD_GATEWAY" }]],
        "routes": [{ "dst": "0.0.0.0/0" }],
        "dataDir": "$STATE/cni/ipam"
      }
    }
  ]
}
JSON

  # kubelet: webhook authentication and authorization (no anonymous access, no read-only port),
  # serving on the node address with a certificate of the cluster CA, cgroupfs under its own
  # cgroup root, on this cgroup v1 machine, Pod logs and state under STATE. Pods get no
  # nameserver (the host's resolver is not for them; see README.md, "DNS").
  cat >"$c/kubelet.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
    cacheTTL: 30s
  x509:
    clientCAFile: $STATE/pki/ca.crt
authorization:
  mode: Webhook
  webhook:
    cacheAuthorizedTTL: 30s
    cacheUnauthorizedTTL: 10s
tlsCertFile: $STATE/pki/kubelet-server.crt
tlsPrivateKeyFile: $STATE/pki/kubelet-server.key
tlsMinVersion: VersionTLS12
serverTLSBootstrap: false
rotateCertificates: false
cgroupDriver: cgroupfs
cgroupRoot: /$CGROUP_PARENT
failCgroupV1: false
failSwapOn: false
containerRuntimeEndpoint: unix://$CONTAINERD_SOCK
podLogsDir: $STATE/pod-logs
resolvConf: ""
clusterDomain: cluster.local
staticPodPath: ""
syncFrequency: 10s
fileCheckFrequency: 20s
nodeStatusUpdateFrequency: 5s
imageMinimumGCAge: 2m
serializeImagePulls: false
maxPods: 110
evictionHard:
  memory.available: 100Mi
  nodefs.available: 5%
  imagefs.available: 5%
enableProfilingHandler: false
enableDebuggingHandlers: true
localStorageCapacityIsolation: true
YAML

  # kube-proxy, iptables mode: NodePorts only on the node address (never the public
  # interface), no route_localnet, and no conntrack sysctls touched.
  cat >"$c/kube-proxy.yaml" <<YAML
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection:
  kubeconfig: $STATE/pki/kube-proxy.kubeconfig
hostnameOverride: $NODE_NAME
bindAddress: $NODE_IP
clusterCIDR: $POD_CIDR
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
nodePortAddresses: ["$NODE_IP/32"]
iptables:
  localhostNodePorts: false
  masqueradeAll: false
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
YAML

  # The OCI registry (Debian's docker-registry, distribution 2.8) on the node address only.
  cat >"$c/registry.yaml" <<YAML
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $STATE/registry
  delete:
    enabled: true
http:
  addr: $REGISTRY
  secret: $(head -c 24 /dev/urandom | base64 -w0)
YAML
}
