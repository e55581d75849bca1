import { ChalkError, Code } from "@chalk/core";
import type { SignalLike } from "./types.js";

/** Linux signal numbers by name. */
const signalNumbers: Record<string, number> = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGILL: 4,
  SIGTRAP: 5,
  SIGABRT: 6,
  SIGBUS: 7,
  SIGFPE: 8,
  SIGKILL: 9,
  SIGUSR1: 10,
  SIGSEGV: 11,
  SIGUSR2: 12,
  SIGPIPE: 13,
  SIGALRM: 14,
  SIGTERM: 15,
  SIGSTKFLT: 16,
  SIGCHLD: 17,
  SIGCONT: 18,
  SIGSTOP: 19,
  SIGTSTP: 20,
  SIGTTIN: 21,
  SIGTTOU: 22,
  SIGURG: 23,
  SIGXCPU: 24,
  SIGXFSZ: 25,
  SIGVTALRM: 26,
  SIGPROF: 27,
  SIGWINCH: 28,
  SIGIO: 29,
  SIGPWR: 30,
  SIGSYS: 31,
};
const signalNames = new Map(Object.entries(signalNumbers).map(([name, n]) => [n, name]));

/**
 * Resolves a signal name (`"SIGTERM"`, `"term"`) or number (1–64) to its Linux number.
 *
 * @throws ChalkError invalid_argument for anything else.
 */
export function signalNumber(signal: SignalLike, field = "signal"): number {
  if (typeof signal === "number") {
    if (Number.isInteger(signal) && signal >= 1 && signal <= 64) return signal;
  } else if (typeof signal === "string") {
    const upper = signal.trim().toUpperCase();
    const n = signalNumbers[upper.startsWith("SIG") ? upper : `SIG${upper}`];
    if (n !== undefined) return n;
    if (/^\d+$/.test(upper)) return signalNumber(Number(upper), field);
  }
  throw new ChalkError(
    Code.InvalidArgument,
    `${field}: ${JSON.stringify(signal)} is not a signal; accepted: a name such as "SIGTERM" or "KILL", or a number from 1 to 64`,
    { field },
  );
}

/** The name of a signal number (`9` → `"SIGKILL"`), or `"SIG<n>"` for real-time signals. */
export function signalName(n: number): string {
  return signalNames.get(n) ?? `SIG${n}`;
}

/**
 * The signal number, for `runsc kill`: runsc names only the standard signals (1 to 31) and refuses
 * real-time ones with "unknown signal", so those are invalid_argument here, before any work.
 */
export function runscSignalNumber(signal: SignalLike, field = "signal"): number {
  const n = signalNumber(signal, field);
  if (n > 31)
    throw new ChalkError(
      Code.InvalidArgument,
      `${field}: ${JSON.stringify(signal)} is a real-time signal, which gVisor's runsc cannot send; accepted: a standard signal from 1 to 31 (SIGHUP … SIGSYS)`,
      { field },
    );
  return n;
}
