/**
 * vitest global setup of the integration tests: builds `chalk` and the workspace packages it uses
 * (turbo skips what is current), so the tests always run the binary of the sources under test.
 */
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";

export default function setup(): void {
  const root = fileURLToPath(new URL("../../..", import.meta.url));
  execFileSync(
    "pnpm",
    ["exec", "turbo", "run", "build", "--filter=@chalk/cli...", "--output-logs=errors-only"],
    {
      cwd: root,
      stdio: ["ignore", "inherit", "inherit"],
    },
  );
}
