import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { createSecureContext } from "node:tls";
import type { ServerConfig } from "./config.js";
import { ConfigError } from "./config-error.js";
import {
  checkDistinct,
  parseTokenFlag,
  readTokensFile,
  TokenConfigError,
  tokenFromEnvironment,
} from "./tokens.js";

/** The kubernetes backend's flags, checked: a kubeconfig that exists, a registry the nodes pull from. */
export function kubernetesSettings(
  values: Record<string, string | boolean | string[] | undefined>,
  pick: (flag: string) => string | undefined,
  env: NodeJS.ProcessEnv,
  c: { registry?: string | undefined; rootfsImages: string[] },
): NonNullable<ServerConfig["kubernetes"]> {
  const kubeconfig = pick("kubeconfig") ?? env.KUBECONFIG;
  if (!kubeconfig)
    throw new ConfigError(
      "--kubeconfig: --backend kubernetes needs the cluster's kubeconfig (or KUBECONFIG)",
    );
  try {
    readFileSync(kubeconfig);
  } catch (err) {
    throw new ConfigError(`--kubeconfig: cannot read ${kubeconfig}: ${(err as Error).message}`);
  }
  if (!c.registry) {
    throw new ConfigError(
      "--registry: --backend kubernetes needs the registry that the nodes pull from (built images are pushed there)",
    );
  }
  if (c.rootfsImages.length > 0) {
    throw new ConfigError(
      "--rootfs-image: not available with --backend kubernetes (nodes pull images from --registry); push the root filesystem to the registry and name it by reference",
    );
  }
  const namespacePrefix = pick("namespace-prefix") ?? "chalk-";
  if (!/^[a-z][a-z0-9-]{0,18}-$/.test(namespacePrefix))
    throw new ConfigError(
      `--namespace-prefix: ${JSON.stringify(namespacePrefix)}: expected a lower-case letter, then up to 19 of a-z, 0-9, '-', ending in '-' (e.g. "chalk-")`,
    );
  const percent = pick("cpu-request-percent") ?? "100";
  if (!/^\d{1,3}$/.test(percent) || Number(percent) < 1 || Number(percent) > 100)
    throw new ConfigError(
      `--cpu-request-percent: ${JSON.stringify(percent)}: expected a whole number from 1 to 100`,
    );
  const runtimeClass = pick("runtime-class") ?? "gvisor";
  if (!/^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/.test(runtimeClass))
    throw new ConfigError(`--runtime-class: ${JSON.stringify(runtimeClass)} is not a RuntimeClass name`);
  const gpuNodeLabel = pick("gpu-node-label") ?? "cloud.google.com/gke-accelerator";
  if (!/^([a-z0-9.-]{1,253}\/)?[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$/.test(gpuNodeLabel))
    throw new ConfigError(`--gpu-node-label: ${JSON.stringify(gpuNodeLabel)} is not a label key`);
  return {
    kubeconfig: resolve(kubeconfig),
    namespacePrefix,
    cpuRequestPercent: Number(percent),
    runtimeClass,
    gpuNodeLabel,
    registryInsecure: values["registry-insecure"] === true,
  };
}

/** Every token grant: `--token` flags, then `CHALK_TOKEN`, then the tokens file; each token once. */
export function readTokens(
  flags: readonly string[] | undefined,
  file: string | undefined,
  env: NodeJS.ProcessEnv,
) {
  try {
    const grants = (flags ?? []).map(parseTokenFlag);
    const fromEnv = tokenFromEnvironment(env);
    if (fromEnv) grants.push(fromEnv);
    if (file) grants.push(...readTokensFile(file));
    checkDistinct(grants);
    return grants;
  } catch (err) {
    if (err instanceof TokenConfigError) throw new ConfigError(err.rawMessage);
    throw err;
  }
}

/** The certificate and key files, read and checked to be a matching PEM pair; undefined for none. */
export function readTls(certFile: string | undefined, keyFile: string | undefined) {
  if (!certFile && !keyFile) return undefined;
  if (!certFile || !keyFile) {
    throw new ConfigError(
      `--tls-cert and --tls-key: give both (only ${certFile ? "--tls-cert" : "--tls-key"} was given)`,
    );
  }
  const read = (flag: string, path: string) => {
    try {
      return readFileSync(path);
    } catch (err) {
      throw new ConfigError(`${flag}: cannot read ${path}: ${(err as Error).message}`);
    }
  };
  const cert = read("--tls-cert", certFile);
  const key = read("--tls-key", keyFile);
  try {
    createSecureContext({ cert, key });
  } catch (err) {
    // OpenSSL's reason ("key values mismatch", "no start line") names no key material.
    throw new ConfigError(
      `--tls-cert ${certFile} and --tls-key ${keyFile}: not a PEM certificate chain and its private key (${(err as Error).message})`,
    );
  }
  return { cert, key };
}
