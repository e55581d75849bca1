import { copyFile, mkdir, rename, stat } from "node:fs/promises";
import { join } from "node:path";
import { ChalkError, Code, invalidArgument } from "@chalk/core";

const HOST_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt";
/** Where build sandboxes see the CA bundle: inside their /tmp tmpfs, so no layer records the mount point. */
export const BUILD_CA_DIR = "/tmp/.chalk-build-ca";

/** The CA bundle build steps trust: a host directory to mount and the variables that point at it. */
export interface BuildCa {
  hostDir: string;
  env: Record<string, string>;
}

/**
 * Copies the build CA bundle into the store (a directory to mount into build sandboxes, read-only,
 * never part of an image); undefined when there is none. `option`: a PEM file, `false` for none,
 * or undefined for the host's bundle when present.
 */
export async function prepareBuildCa(
  storeDir: string,
  option: string | false | undefined,
): Promise<BuildCa | undefined> {
  if (option === false) return undefined;
  const source = option ?? HOST_CA_BUNDLE;
  if (!source.startsWith("/"))
    throw invalidArgument("buildCaBundle", `${source} is relative`, "an absolute path or false");
  const present = await stat(source).catch(() => undefined);
  if (!present?.isFile()) {
    if (option === undefined) return undefined;
    throw new ChalkError(Code.NotFound, `buildCaBundle: ${source} is not a file`, { field: "buildCaBundle" });
  }
  const dir = join(storeDir, "chalk", "build-ca");
  await mkdir(dir, { recursive: true });
  const tmp = join(dir, `.ca-${process.pid}`);
  await copyFile(source, tmp);
  await rename(tmp, join(dir, "ca-certificates.crt"));
  const file = `${BUILD_CA_DIR}/ca-certificates.crt`;
  return {
    hostDir: dir,
    env: {
      SSL_CERT_FILE: file,
      PIP_CERT: file,
      REQUESTS_CA_BUNDLE: file,
      CURL_CA_BUNDLE: file,
      GIT_SSL_CAINFO: file,
    },
  };
}
