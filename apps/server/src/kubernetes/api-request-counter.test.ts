import { createServer, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, test } from "vitest";
import { ApiRequestCounter } from "./api-request-counter.js";

const servers: Server[] = [];

async function listen(): Promise<string> {
  const server = createServer((_req, res) => res.end("ok"));
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function send(url: string, method: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method }, (res) => {
      res.resume();
      res.once("end", resolve);
    });
    req.once("error", reject);
    req.end();
  });
}

afterEach(async () => {
  for (const s of servers.splice(0)) await new Promise((resolve) => s.close(resolve));
});

describe("ApiRequestCounter (real HTTP requests on loopback)", () => {
  test("counts the requests to its API server by method, and none to other hosts", async () => {
    const api = await listen();
    const other = await listen();
    const counter = new ApiRequestCounter(api);
    try {
      await send(`${api}/api/v1/pods`, "GET");
      await send(`${api}/api/v1/namespaces/a/pods?watch=true`, "GET");
      await send(`${api}/api/v1/namespaces/a/pods`, "POST");
      await send(`${api}/api/v1/namespaces/a/pods/p`, "DELETE");
      await send(`${other}/v2/`, "GET");
      await send(`${other}/v2/x/blobs/uploads/`, "POST");
      expect(counter.byMethod()).toEqual({ GET: 2, POST: 1, DELETE: 1 });
    } finally {
      counter.close();
    }
    await send(`${api}/api/v1/pods`, "GET");
    expect(counter.byMethod()).toEqual({ GET: 2, POST: 1, DELETE: 1 });
  });

  test("a server URL that does not parse counts nothing and does not throw", async () => {
    const api = await listen();
    const counter = new ApiRequestCounter("");
    await send(`${api}/api/v1/pods`, "GET");
    expect(counter.byMethod()).toEqual({});
    counter.close();
  });
});
