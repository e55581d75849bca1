// Executing commands: buffered exec, a timeout, and the Sandbox underneath for streaming and stdin.
import { ChalkError, Code, Container, Image } from "@chalk/container";

const c = await new Container({
  image: Image.debianSlim("3.11").workdir("/app"),
  name: "exec-demo",
}).run();

const result = await c.exec("ls", "-la", "/app");
console.log(result.stdoutText);
console.log(result.stderrText);
console.log(result.exitCode);

const failing = await c.exec("sh", "-c", "echo oops >&2; exit 3");
console.log(failing.exitCode, failing.stderrText.trim()); // 3 oops

try {
  await c.exec("sleep", "9", { timeoutSecs: 1 });
} catch (err) {
  if (!(err instanceof ChalkError && err.code === Code.DeadlineExceeded)) throw err;
  console.log(`timed out: ${err.message}`);
}

// Streaming output and stdin: drop down to the Sandbox.
const proc = await c.sandbox.spawn(["sh", "-c", "while read line; do echo got $line; done"]);
await proc.stdin.write("one\ntwo\n");
await proc.stdin.end();
for await (const chunk of proc.stdout) process.stdout.write(chunk);
console.log(await proc.wait());

await c.stop();
