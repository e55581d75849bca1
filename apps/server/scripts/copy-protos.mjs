// Ships the repository's .proto files with the server (under apps/server/proto) so server reflection
// works from an installed package, where the repository's proto/ directory is not there.
import { cpSync, rmSync } from "node:fs";
import { fileURLToPath } from "node:url";

const from = fileURLToPath(new URL("../../../proto", import.meta.url));
const to = fileURLToPath(new URL("../proto", import.meta.url));
rmSync(to, { recursive: true, force: true });
cpSync(from, to, { recursive: true, filter: (src) => !src.includes("node_modules") });
