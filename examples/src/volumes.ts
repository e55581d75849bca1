// Mounting volumes: durable state shared between containers and runs.
import { Container, Image, Volume } from "@chalk/container";

const vol = new Volume("training-data");
await vol.putFile("inputs/example.txt", "hello\n");

const c = await new Container({
  image: Image.debianSlim("3.11"),
  name: "trainer",
  volumes: [["training-data", "/data"]],
}).run();

const result = await c.exec("cat", "/data/inputs/example.txt");
console.log(result.stdoutText); // "hello\n"
await c.exec("sh", "-c", "echo trained > /data/model.txt");
await c.stop();

// The volume outlives the container: read what it wrote.
console.log(new TextDecoder().decode(await vol.readFile("model.txt"))); // "trained\n"
await vol.delete();
