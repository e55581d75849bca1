// Environment variables and secrets: plaintext env, a managed secret, an integration's keys, and a
// value from this process's environment that lives only as long as the container.
import { Container, Image, Integrations, Secret, Secrets } from "@chalk/container";

await Secrets.set("OPENAI_API_KEY", "sk-example-not-a-real-key");
await Integrations.set("prod_postgres", { PGHOST: "db.internal", PGUSER: "app", PGPASSWORD: "example" });
process.env.RUN_TOKEN ??= "token-from-my-shell";

const c = await new Container({
  image: Image.debianSlim("3.11"),
  name: "api-client",
  env: { LOG_LEVEL: "INFO" },
  secrets: [
    Secret.fromEnv("OPENAI_API_KEY"),
    Secret.fromIntegration("prod_postgres"),
    Secret.fromLocalEnv("RUN_TOKEN"),
  ],
}).run();

// biome-ignore lint/suspicious/noTemplateCurlyInString: a shell expansion, not a template.
const r = await c.exec("sh", "-c", 'echo "$LOG_LEVEL $PGHOST $PGUSER ${#OPENAI_API_KEY} ${#RUN_TOKEN}"');
console.log(r.stdoutText.trim()); // INFO db.internal app 25 19 (lengths only: never print secrets)
await c.stop(); // also deletes the stored RUN_TOKEN

await Secrets.delete("OPENAI_API_KEY");
await Integrations.delete("prod_postgres");
