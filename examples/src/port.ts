// Exposing a port: a long-lived server inside the container, reached from this machine at
// `c.info.address`. debianSlim has Python, so its standard library serves HTTP.
import { Container, Image } from "@chalk/container";

const c = await new Container({
  image: Image.debianSlim("3.11"),
  name: "api",
  port: 8080,
  entrypoint: ["python3", "-m", "http.server", "8080", "--bind", "0.0.0.0", "--directory", "/etc"],
}).run();

const url = `http://${c.info.address}/os-release`;
let body = "";
for (let attempt = 0; attempt < 50 && !body; attempt++) {
  body = await fetch(url).then(
    (r) => r.text(),
    () => new Promise<string>((resolve) => setTimeout(() => resolve(""), 200)),
  );
}
console.log(`GET ${url} -> ${body.split("\n")[0]}`);
console.log((await c.logs()).trim().split("\n").at(-1)); // the server's access log line
await c.stop({ gracePeriodSeconds: 5 });
