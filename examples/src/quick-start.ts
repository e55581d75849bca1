// The seed's quick start. Python 3.11, not the seed's 3.12: without a container registry this
// machine builds debianSlim from Debian bookworm's own packages, and bookworm ships Python 3.11.
import { Container, Image } from "@chalk/container";

const c = await new Container({
  image: Image.debianSlim("3.11").pipInstall(["requests"]),
  name: "hello-container",
  cpu: "1",
  memory: "2Gi",
}).run({ onBuildLog: (log) => process.stderr.write(log.text) });

const result = await c.exec("python", "-c", "import requests; print(requests.__version__)");
console.log(result.stdoutText);
console.log(`exit code: ${result.exitCode}`);

await c.stop();
