import { describe, expect, test } from "vitest";
import type { Config } from "./config.js";
import { chooseConnection } from "./connection.js";
import { UsageError } from "./errors.js";

const config: Config = {
  currentContext: "prod",
  contexts: {
    prod: { server: "prod.example:443", token: "prod-token", environment: "prod", ca: "/etc/ca.pem" },
    dev: { server: "127.0.0.1:50051", token: "dev-token" },
  },
};

describe("where a command connects", () => {
  test("the current context, when nothing else says", () => {
    expect(chooseConnection({}, {}, config)).toEqual({
      server: "prod.example:443",
      token: "prod-token",
      environment: "prod",
      ca: "/etc/ca.pem",
      context: "prod",
    });
  });

  test("environment variables override the context, flags override both", () => {
    const env = { CHALK_ENVIRONMENT: "staging", CHALK_TOKEN: "env-token" };
    expect(chooseConnection({}, env, config)).toMatchObject({ environment: "staging", token: "env-token" });
    expect(chooseConnection({ environment: "flag" }, env, config)).toMatchObject({ environment: "flag" });
    expect(chooseConnection({ context: "dev" }, {}, config)).toMatchObject({
      server: "127.0.0.1:50051",
      token: "dev-token",
      environment: "default",
      ca: undefined,
    });
    // An empty variable counts as unset.
    expect(chooseConnection({}, { CHALK_ENVIRONMENT: "" }, config)).toMatchObject({ environment: "prod" });
  });

  test("a context's token and CA go only to its own server", () => {
    for (const c of [
      chooseConnection({ server: "elsewhere:1" }, {}, config),
      chooseConnection({}, { CHALK_API_SERVER: "elsewhere:1" }, config),
    ]) {
      expect(c).toMatchObject({ server: "elsewhere:1", token: undefined, ca: undefined });
    }
    expect(chooseConnection({ server: "elsewhere:1" }, { CHALK_TOKEN: "t" }, config).token).toBe("t");
    expect(chooseConnection({ server: "prod.example:443" }, {}, config).token).toBe("prod-token");
  });

  test("no context: the SDK's defaults; an unknown --context is a usage error", () => {
    expect(chooseConnection({}, {}, { contexts: {} })).toEqual({
      server: "127.0.0.1:50051",
      token: undefined,
      environment: "default",
      ca: undefined,
      context: undefined,
    });
    expect(() => chooseConnection({ context: "nope" }, {}, config)).toThrow(UsageError);
  });
});
