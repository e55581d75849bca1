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
    // "34" and "SIG34", the name signalName gives a real-time signal.
    const digits = /^(?:SIG)?(\d{1,2})$/.exec(upper)?.[1];
    if (digits !== undefined && Number(digits) >= 1 && Number(digits) <= 64) return Number(digits);
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

/** The highest signal runsc delivers: `runsc kill` knows the standard signals 1–31, not the real-time ones. */
const LAST_SENDABLE_SIGNAL = 31;

/**
 * Resolves a signal to send (to a sandbox or a process) to its Linux number, as
 * {@link signalNumber} does, and checks that runsc can deliver it: the standard signals 1–31.
 * Real-time signals (32–64) are refused, since `runsc kill` does not know them.
 *
 * @throws ChalkError invalid_argument naming `field` for anything else, before anything is sent.
 */
export function sendableSignal(signal: SignalLike, field = "signal"): number {
  const n = signalNumber(signal, field);
  if (n > LAST_SENDABLE_SIGNAL) {
    throw new ChalkError(
      Code.InvalidArgument,
      `${field}: ${JSON.stringify(signal)} is a real-time signal, which runsc cannot deliver; accepted: a standard signal, by name such as "SIGTERM" or by number from 1 to ${LAST_SENDABLE_SIGNAL}`,
      { field },
    );
  }
  return n;
}
