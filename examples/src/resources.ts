// Configuring resources: Kubernetes quantities, checked before anything starts. Omitted values take
// the server's defaults for the environment. A GPU on a machine without one is refused up front.
import { ChalkError, Code, Container, Image } from "@chalk/container";

const c = await new Container({
  image: Image.debianSlim("3.11"),
  name: "batch-job",
  cpu: "500m", // half a core
  memory: "512Mi",
}).run();
const mem = await c.exec("sh", "-c", "grep MemTotal /proc/meminfo");
console.log(
  `limits: ${c.info.resources.cpuMillis}m CPU, ${c.info.resources.memoryBytes} bytes; ${mem.stdoutText.trim()}`,
);
await c.stop();

try {
  await new Container({ image: Image.debianSlim("3.11"), name: "gpu-job", gpu: "nvidia-l4:1" }).run();
} catch (err) {
  if (!(err instanceof ChalkError && err.code === Code.FailedPrecondition)) throw err;
  console.log(`no GPU here: ${err.message}`);
}
