// Lifecycle: reattach from another process by name and by id, inspect status, stop with a grace
// period, and read the entrypoint's log.
import { execFileSync } from "node:child_process";
import { Container, Image } from "@chalk/container";

const c = await new Container({
  image: Image.debianSlim("3.11"),
  name: "hello-lifecycle",
  entrypoint: ["sh", "-c", "trap 'echo got SIGTERM; exit 0' TERM; echo started; while :; do sleep 0.2; done"],
}).run();
console.log(c.id, c.info.status, c.imageUri);

// Another OS process attaches by name and by id (what a second terminal or a cron job would do).
const attach = `
  import { Container } from "@chalk/container";
  const byName = await Container.fromName("hello-lifecycle");
  const byId = await Container.fromId(byName.id);
  console.log(byId.info.status, (await byId.exec("echo", "hi from another process")).stdoutText.trim());
`;
console.log(
  execFileSync(
    process.execPath,
    ["--import", "tsx", "--conditions=@chalk/source", "--input-type=module", "-e", attach],
    {
      encoding: "utf8",
    },
  ).trim(),
);

await c.refresh();
console.log(c.info.status); // Running
await c.stop({ gracePeriodSeconds: 10 }); // SIGTERM first: the trap runs
console.log(c.info.status, (await c.logs()).trim().split("\n")); // Stopped [ 'started', 'got SIGTERM' ]
