import { ImageClient } from "@chalk/image";
import type { Command } from "commander";
import { buildWithProgress } from "../build.js";
import { outputOption, printJson, sdkFor, serverCommand, subcommand } from "../command.js";
import { formatAge, formatBytes, table } from "../format.js";
import { loadImageFile } from "../image-file.js";
import { imageJson } from "../json.js";
import { terminal } from "../terminal.js";

/** `chalk image …`: build and list images. */
export function imageCommand(): Command {
  const image = subcommand("image", "Build and list images", ["chalk image build spec.ts", "chalk image ls"]);
  image.addCommand(
    serverCommand("build", "Build the Image a module exports by default, with live step progress", [
      "chalk image build spec.ts",
      "chalk image build spec.mjs -o json | jq -r .imageUri",
    ])
      .argument("<file>", "module whose default export is an Image (.ts, .mts, .js, .mjs)")
      .addOption(outputOption(["text", "json"]))
      .action(async (file: string, opts: { output: string }, cmd: Command) => {
        const sdk = await sdkFor(cmd);
        const spec = await loadImageFile(file, "file");
        const info = await buildWithProgress(spec, sdk, terminal());
        if (opts.output === "json") printJson(imageJson(info));
        else process.stdout.write(`${info.imageUri}\n`);
      }),
  );
  image.addCommand(
    serverCommand("ls", "List images built or requested in this environment, newest first", [
      "chalk image ls",
      "chalk image ls -o json",
    ])
      .addOption(outputOption(["table", "json"]))
      .action(async (opts: { output: string }, cmd: Command) => {
        const client = new ImageClient(await sdkFor(cmd));
        const images = [];
        let pageToken = "";
        do {
          const page = await client.list({ pageSize: 1000, ...(pageToken ? { pageToken } : {}) });
          images.push(...page.images);
          pageToken = page.nextPageToken;
        } while (pageToken !== "");
        if (opts.output === "json") return printJson(images.map(imageJson));
        const term = terminal();
        const rows = images.map((i) => [
          i.specDigest.slice(0, 19),
          i.status,
          i.status === "exists" || i.status === "succeeded" ? formatBytes(i.sizeBytes) : "",
          String(i.layerCount),
          formatAge(i.updatedAt),
          i.imageUri,
        ]);
        process.stdout.write(
          table(
            ["SPEC", "STATUS", "SIZE", "LAYERS", "UPDATED", "URI"].map((h) => term.out.bold(h)),
            rows,
          ),
        );
      }),
  );
  return image;
}
