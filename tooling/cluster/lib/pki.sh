# shellcheck shell=bash
# The cluster's PKI (sourced by cluster.sh): two CAs, one for the Kubernetes components and one for
# etcd (so that no Kubernetes client certificate opens etcd), ECDSA P-256 keys, and a kubeconfig per
# client. Made once at the first `up`, in $STATE/pki (root only), and removed by `down`.

# cert DIR NAME CA SUBJECT [SAN]: a key and a certificate signed by the CA DIR/CA.{crt,key}.
cert() {
  local dir=$1 name=$2 ca=$3 subj=$4 san=${5:-} ext
  [ -f "$dir/$name.crt" ] && return 0
  openssl ecparam -name prime256v1 -genkey -noout -out "$dir/$name.key" 2>/dev/null
  ext=$(mktemp)
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    if [ -n "$san" ]; then
      echo "extendedKeyUsage=serverAuth,clientAuth"
      echo "subjectAltName=$san"
    else
      echo "extendedKeyUsage=clientAuth"
    fi
  } >"$ext"
  openssl req -new -key "$dir/$name.key" -subj "$subj" 2>/dev/null |
    openssl x509 -req -CA "$dir/$ca.crt" -CAkey "$dir/$ca.key" -CAcreateserial -days 3650 \
      -extfile "$ext" -out "$dir/$name.crt" 2>/dev/null
  rm -f "$ext"
}

# ca DIR NAME CN: a self-signed CA.
ca() {
  local dir=$1 name=$2 cn=$3
  [ -f "$dir/$name.crt" ] && return 0
  openssl ecparam -name prime256v1 -genkey -noout -out "$dir/$name.key" 2>/dev/null
  openssl req -x509 -new -key "$dir/$name.key" -subj "/CN=$cn" -days 3650 \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out "$dir/$name.crt" 2>/dev/null
}

# kubeconfig FILE USER CERT: a kubeconfig for the API server on the node address, with the
# client certificate CERT.{crt,key} and the CA embedded.
kubeconfig() {
  local file=$1 user=$2 cert=$3 p=$STATE/pki
  umask 077
  cat >"$file" <<KC
apiVersion: v1
kind: Config
clusters:
- name: chalk-cluster
  cluster:
    server: https://$NODE_IP:$APISERVER_PORT
    certificate-authority-data: $(base64 -w0 "$p/ca.crt")
users:
- name: $user
  user:
    client-certificate-data: $(base64 -w0 "$p/$cert.crt")
    client-key-data: $(base64 -w0 "$p/$cert.key")
contexts:
- name: chalk-cluster
  context:
    cluster: chalk-cluster
    user: $user
current-context: chalk-cluster
KC
}

# make_pki: every key, certificate, kubeconfig and the Secret encryption key, if missing.
make_pki() {
  local p=$STATE/pki
  mkdir -p "$p"
  chmod 700 "$STATE" "$p"
  (
    umask 077
    ca "$p" ca chalk-cluster-ca
    ca "$p" etcd-ca chalk-cluster-etcd-ca
    cert "$p" etcd-server etcd-ca "/CN=chalk-cluster-etcd" "IP:127.0.0.1,DNS:localhost"
    cert "$p" etcd-apiserver-client etcd-ca "/CN=kube-apiserver-etcd-client"
    cert "$p" etcd-admin-client etcd-ca "/CN=chalk-cluster-etcd-admin"
    local svc=DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc
    cert "$p" apiserver ca "/CN=kube-apiserver" \
      "IP:$NODE_IP,IP:$KUBERNETES_SERVICE_IP,IP:127.0.0.1,$svc,DNS:kubernetes.default.svc.cluster.local,DNS:localhost"
    cert "$p" apiserver-kubelet-client ca "/CN=kube-apiserver-kubelet-client"
    cert "$p" admin ca "/O=system:masters/CN=chalk-cluster-admin"
    cert "$p" controller-manager ca "/CN=system:kube-controller-manager"
    cert "$p" scheduler ca "/CN=system:kube-scheduler"
    cert "$p" kubelet-client ca "/O=system:nodes/CN=system:node:$NODE_NAME"
    cert "$p" kubelet-server ca "/CN=$NODE_NAME" "IP:$NODE_IP,DNS:$NODE_NAME"
    cert "$p" kube-proxy ca "/CN=system:kube-proxy"
    cert "$p" kube-network-policies ca "/CN=chalk:kube-network-policies"
    [ -f "$p/sa.key" ] || {
      openssl ecparam -name prime256v1 -genkey -noout -out "$p/sa.key" 2>/dev/null
      openssl ec -in "$p/sa.key" -pubout -out "$p/sa.pub" 2>/dev/null
    }
    # Secrets at rest: secretbox (XSalsa20-Poly1305) with a random 32-byte key, root only.
    [ -f "$p/encryption.yaml" ] || cat >"$p/encryption.yaml" <<ENC
apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
- resources: [secrets]
  providers:
  - secretbox:
      keys:
      - name: key1
        secret: $(head -c 32 /dev/urandom | base64 -w0)
  - identity: {}
ENC
  )
  [ -f "$KUBECONFIG_ADMIN" ] || kubeconfig "$KUBECONFIG_ADMIN" chalk-cluster-admin admin
  local c
  for c in controller-manager scheduler kubelet-client kube-proxy kube-network-policies; do
    [ -f "$p/$c.kubeconfig" ] || kubeconfig "$p/$c.kubeconfig" "$c" "$c"
  done
}
