// Executing commands: buffered exec, a timeout, and the Sandbox underneath for streaming and stdin.
import { ChalkError, Code, Container, Image } from "@chalk/container";

const c = await new Container({ image: Image.debianSlim("3.11"), name: "exec-demo" }).run();

// (The seed lists a directory with `ls -la`; this machine's gVisor build (runsc 2022-12) rejects the
// statx call that Debian bookworm's ls makes, so read a file instead.)
const result = await c.exec("cat", "/etc/os-release");
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
