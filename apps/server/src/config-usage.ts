/** The command-line help, printed by `--help`. */
export const USAGE = `chalk-server: the Chalk gRPC server (containers on gVisor)

  --listen HOST:PORT           gRPC address (default 127.0.0.1:50051)           env CHALK_LISTEN
  --metrics-listen HOST:PORT   Prometheus /metrics over HTTP (default: off)      env CHALK_METRICS_LISTEN
  --data-dir DIR               state directory (default /var/lib/chalk), one    env CHALK_DATA_DIR
                               server at a time (locked while it runs)
  --backend local|kubernetes   compute backend (default local)                  env CHALK_BACKEND
  --kubeconfig FILE            kubernetes: the cluster's kubeconfig             env KUBECONFIG
  --cpu-request-percent N      kubernetes: CPU request as % of the limit (default 100; memory: always 100)
  --namespace-prefix P         kubernetes: prefix of this server's namespaces (default chalk-)
  --runtime-class NAME         kubernetes: Pods' runtimeClassName (default gvisor) env CHALK_RUNTIME_CLASS
  --gpu-node-label LABEL       kubernetes: node label naming the GPU type (default cloud.google.com/gke-accelerator)
  --registry-insecure          talk to --registry over plain HTTP (a private test network only)
  --default-cpu Q              default CPU per container (default 1)            env CHALK_DEFAULT_CPU
  --default-memory Q           default memory per container (default 1Gi)       env CHALK_DEFAULT_MEMORY
  --environments-file FILE     JSON {"<env>": {"cpu": "2", "memory": "4Gi"}}    env CHALK_ENVIRONMENTS_FILE
  --images-dir DIR             image store (default DATA_DIR/images)            env CHALK_IMAGES_DIR
  --rootfs-image NAME=DIR      serve image reference NAME from a host root filesystem (repeatable)
  --registry HOST:PORT         OCI registry for images (optional)               env CHALK_REGISTRY
  --runsc PATH                 the pinned gVisor runsc (default: the build cache) env CHALK_RUNSC
  --tls-cert FILE              serve TLS with this certificate chain (PEM)      env CHALK_TLS_CERT
  --tls-key FILE               ...and this private key (PEM); without both, plaintext, only on loopback
                                                                                env CHALK_TLS_KEY
  --token TOKEN@ENVS           accepted bearer token and the environments it may act in: env1,env2, or *
                               for every environment (repeatable; visible in ps: prefer the file or env)
  --tokens-file FILE           JSON [{"sha256"|"token": "...", "environments": ["env1"] | "*"}]
                                                                                env CHALK_TOKENS_FILE
                               env CHALK_TOKEN with CHALK_TOKEN_ENVIRONMENTS=env1,env2 (or *) adds one more
  --insecure-no-auth           no authentication; only on a loopback address
  --log-level LEVEL            fatal|error|warn|info|debug|trace|silent         env CHALK_LOG_LEVEL
  --container-log-max-bytes N  size bound of a container's log (default 8388608)
  --default-disk Q|none        disk limit of a container's writable layer (default 10Gi)  env CHALK_DEFAULT_DISK
  --volume-quota Q|none        quota of each new volume (default 10Gi)          env CHALK_VOLUME_QUOTA
  --build-memory Q             memory of an image build step (default 4Gi)      env CHALK_BUILD_MEMORY
  --build-cpu Q                CPU of an image build step (default 2)           env CHALK_BUILD_CPU
  --build-pids N               processes in an image build step (default 1024)  env CHALK_BUILD_PIDS
  --max-concurrent-execs N     execs running at once, every exec path; more queue (default 32)
  --max-execs-per-container N  ...of them in one container or sandbox (default half)
  --max-execs-per-environment N  ...in one environment (default three quarters)
  --max-long-execs-per-container N    interactive, terminal or no-timeout execs in one container
                                      (default an eighth)
  --max-long-execs-per-environment N  ...in one environment (default a quarter)
  --max-queued-execs N         execs waiting; more get resource_exhausted (default 64 per slot)
  --max-queued-execs-per-environment N  ...from one environment (default three quarters)
  --max-queued-exec-stdin-bytes N  stdin bytes waiting execs hold together (default 67108864)
  --max-unary-reads-per-connection N  unary requests one connection may have arriving at once;
                               more wait, held back by HTTP/2 flow control (default 4)
  --allow-registry HOST[:PORT] another registry image references may name (repeatable); any
                               other host is refused before a request is sent
                                                                                env CHALK_ALLOW_REGISTRIES (comma-separated)
  --finished-log-retention N   finished containers per environment whose logs are kept (default 100)
  --finished-log-max-age-secs N  ...and for at most this long (default 604800, 7 days; 0: no limit)
  --help                       this text
`;
