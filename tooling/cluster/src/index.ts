/**
 * The project's single-node Kubernetes test cluster for integration tests: every Pod runs in gVisor
 * (RuntimeClass `gvisor`, handler runsc), images come from the cluster's own registry, Services are
 * reachable from the node through kube-proxy, and NetworkPolicy is enforced. See README.md.
 */
export {
  buildScript,
  clusterHolders,
  clusterScript,
  type EnsureClusterOptions,
  ensureCluster,
  holderEnv,
  parseClusterEnv,
  releaseCluster,
  runScript,
  type TestCluster,
} from "./cluster.js";
export {
  busyboxStatic,
  type PushedImage,
  type PushTestImageOptions,
  pushRootfsImage,
  pushTestImage,
} from "./images.js";
export {
  apply,
  type KubectlOptions,
  kubectl,
  testNamespace,
  tryKubectl,
  uniqueNamespace,
  waitForPodRunning,
  waitUntil,
} from "./kubectl.js";
