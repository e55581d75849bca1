import { describe, expect, test } from "vitest";
import { decodeWaitStatus, waitStatusFromExitCode, waitStatusFromLog } from "./wait-status.js";

describe("runsc wait statuses", () => {
  test("an exit code and a signal death are told apart", () => {
    expect(decodeWaitStatus(0)).toEqual({ exitCode: 0, signal: null });
    expect(decodeWaitStatus(3 << 8)).toEqual({ exitCode: 3, signal: null });
    expect(decodeWaitStatus(137 << 8)).toEqual({ exitCode: 137, signal: null });
    expect(decodeWaitStatus(9)).toEqual({ exitCode: null, signal: "SIGKILL" });
    expect(decodeWaitStatus(15 | 0x80)).toEqual({ exitCode: null, signal: "SIGTERM" });
  });

  test("the last status line of a runsc log is the one that counts", () => {
    const log = [
      "I1128 17:11:48.710000    6474 main.go:217] Args: [runsc exec x sh -c echo Exiting with status: 3]",
      "I1128 17:11:48.724047    6474 main.go:266] Exiting with status: 9",
      "",
    ].join("\n");
    expect(waitStatusFromLog(log)).toEqual({ exitCode: null, signal: "SIGKILL" });
    const pinned = [
      "I1201 00:16:07.753452   21688 cli.go:278] Args: [runsc exec x sh -c kill -KILL $$]",
      "I1201 00:16:07.765679   21688 cli.go:317] Exiting with status: 15",
    ].join("\n");
    expect(waitStatusFromLog(pinned)).toEqual({ exitCode: null, signal: "SIGTERM" });
    expect(waitStatusFromLog("W1128 FATAL ERROR: waiting on pid 7")).toBeUndefined();
  });

  test("without a log, 128+N is a signal only when that signal was sent", () => {
    expect(waitStatusFromExitCode(137, new Set([9]))).toEqual({ exitCode: null, signal: "SIGKILL" });
    expect(waitStatusFromExitCode(137, new Set())).toEqual({ exitCode: 137, signal: null });
    expect(waitStatusFromExitCode(3, new Set([3]))).toEqual({ exitCode: 3, signal: null });
  });
});
