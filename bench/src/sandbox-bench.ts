/**
 * The sandbox benchmark as a library: measures any number of {@link SandboxRuntime}s (columns)
 * against the raw runsc floors, interleaved one sample at a time in one run, and renders the
 * table of ratios. `sandbox.ts` runs it on the in-process runtime and the gRPC client; another
 * runtime is one more {@link SandboxBenchColumn}.
 */
import type { Sandbox, SandboxCreateOptions, SandboxRuntime } from "@chalk/sandbox";
import { RawRunsc } from "./raw-runsc.js";
import { median } from "./stats.js";

/** One runtime to measure. */
export interface SandboxBenchColumn {
  /** Column heading, e.g. "in-process". */
  label: string;
  /**
   * Starts the runtime (a server, a connection…); `close` ends it. `base` is what its sandboxes run
   * (default: `{ rootfs }` of the options; a server takes an image reference instead).
   */
  open(): Promise<{ runtime: SandboxRuntime; base?: SandboxCreateOptions; close(): Promise<void> }>;
  /**
   * Targets as ratios to the floor: create and exec at most; stream at least, as a ratio to raw
   * `runsc exec` read by a Node process (the floor any runtime that hands bytes to Node pays).
   */
  targets: { create: number; exec: number; stream: number };
}

/** Sample counts. */
export interface SandboxBenchOptions {
  rootfs: string;
  /** create → first exec samples. Default 7. */
  createRounds?: number;
  /** exec round-trip samples. Default 40. */
  execRounds?: number;
  /** stdout throughput samples. Default 7. */
  streamRounds?: number;
  /** Bytes per throughput sample. Default 256 MiB. */
  streamBytes?: number;
  /** Progress lines go here. Default: stderr. */
  log?: (line: string) => void;
}

/** Medians: ms for create and exec, MiB/s for stream. */
export interface SandboxBenchFigures {
  create: number;
  exec: number;
  stream: number;
}

/** What one run measured. */
export interface SandboxBenchResult {
  /** The raw floors, plus raw stdout piped into this process (MiB/s), for reference. */
  floor: SandboxBenchFigures & { streamPiped: number };
  columns: { column: SandboxBenchColumn; figures: SandboxBenchFigures }[];
  rounds: { create: number; exec: number; stream: number; streamBytes: number };
}

async function time(fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

/** Reads a process's stdout to the end through the public API and returns MiB/s. */
async function streamThrough(sandbox: Sandbox, bytes: number): Promise<number> {
  const t = performance.now();
  const proc = await sandbox.spawn(["head", "-c", String(bytes), "/dev/zero"]);
  const stderr = (async () => {
    for await (const _ of proc.stderr);
  })();
  let received = 0;
  for await (const chunk of proc.stdout) received += (chunk as Uint8Array).length;
  await Promise.all([stderr, proc.wait()]);
  const ms = performance.now() - t;
  if (received !== bytes) throw new Error(`streamed ${received} bytes, expected ${bytes}`);
  return bytes / 2 ** 20 / (ms / 1000);
}

/** Runs one round's samplers one after another, starting with a different one each round. */
async function inTurn(round: number, samplers: (() => Promise<void>)[]): Promise<void> {
  for (let j = 0; j < samplers.length; j++) await samplers[(round + j) % samplers.length]!();
}

/**
 * Measures the floors and every column, interleaved: each round takes one raw sample and one
 * sample of each column, in an order that rotates from round to round, so that load from
 * elsewhere on the machine (and whatever one sample leaves behind for the next) weighs on all alike.
 */
export async function runSandboxBench(
  columns: readonly SandboxBenchColumn[],
  o: SandboxBenchOptions,
): Promise<SandboxBenchResult> {
  const rounds = {
    create: o.createRounds ?? 7,
    exec: o.execRounds ?? 40,
    stream: o.streamRounds ?? 7,
    streamBytes: o.streamBytes ?? 256 * 2 ** 20,
  };
  const log = o.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const raw = new RawRunsc(o.rootfs);
  const opened: Awaited<ReturnType<SandboxBenchColumn["open"]>>[] = [];
  try {
    for (const c of columns) opened.push(await c.open());
    const samples = columns.map(() => ({
      create: [] as number[],
      exec: [] as number[],
      stream: [] as number[],
    }));
    const floor = { create: [] as number[], exec: [] as number[], stream: [] as number[] };
    const piped: number[] = [];

    // Warm-up: one of each, not counted.
    raw.run();
    raw.exec();
    for (const rt of opened) {
      const s = await rt.runtime.create(rt.base ?? { rootfs: o.rootfs });
      await s.exec("/bin/true");
      await s.stop();
    }

    log(`create → first exec: ${rounds.create} rounds`);
    for (let i = 0; i < rounds.create; i++) {
      await inTurn(i, [
        async () => {
          floor.create.push(raw.run());
        },
        ...opened.map((rt, k) => async () => {
          let made: { stop(): Promise<void> } | undefined;
          samples[k]!.create.push(
            await time(async () => {
              const s = await rt.runtime.create(rt.base ?? { rootfs: o.rootfs });
              made = s;
              await s.exec("/bin/true");
            }),
          );
          await made?.stop();
        }),
      ]);
    }

    const sandboxes: Sandbox[] = [];
    for (const rt of opened) sandboxes.push(await rt.runtime.create(rt.base ?? { rootfs: o.rootfs }));
    try {
      log(`exec round trip: ${rounds.exec} rounds`);
      for (let i = 0; i < rounds.exec; i++) {
        await inTurn(i, [
          async () => {
            floor.exec.push(raw.exec());
          },
          ...sandboxes.map((s, k) => async () => {
            samples[k]!.exec.push(await time(() => s.exec("/bin/true")));
          }),
        ]);
      }
      log(`stdout throughput: ${rounds.stream} rounds of ${rounds.streamBytes / 2 ** 20} MiB`);
      for (let i = 0; i < rounds.stream; i++) {
        await inTurn(i, [
          async () => {
            floor.stream.push(raw.stream(rounds.streamBytes));
          },
          async () => {
            piped.push(await raw.streamPiped(rounds.streamBytes));
          },
          ...sandboxes.map((s, k) => async () => {
            samples[k]!.stream.push(await streamThrough(s, rounds.streamBytes));
          }),
        ]);
      }
    } finally {
      for (const s of sandboxes) await s.stop().catch(() => undefined);
    }
    const figures = (x: { create: number[]; exec: number[]; stream: number[] }) => ({
      create: median(x.create),
      exec: median(x.exec),
      stream: median(x.stream),
    });
    return {
      floor: { ...figures(floor), streamPiped: median(piped) },
      columns: columns.map((column, k) => ({ column, figures: figures(samples[k]!) })),
      rounds,
    };
  } finally {
    raw.close();
    for (const rt of opened) await rt.close().catch(() => undefined);
  }
}

/**
 * The floors Debian's runsc (0.0~20221219.0, the ptrace platform) gave on this machine, recorded in
 * bench/results/sandbox.md on 2026-11-28 before the pinned build replaced it: ms, MiB/s.
 */
export const DEBIAN_RUNSC_FLOORS = { create: 152, exec: 33, stream: 97, streamPiped: 62 } as const;

/**
 * The result as a Markdown table: one row per figure with the old (Debian runsc) floor, the new
 * raw floor, and value, ratio and target per column. Stream ratios are to raw `runsc exec` read
 * by Node; raw `runsc exec` into /dev/null is a reference row.
 */
export function sandboxBenchTable(r: SandboxBenchResult): string {
  const ms = (x: number) => `${x.toFixed(0)} ms`;
  const rate = (x: number) => `${x.toFixed(0)} MiB/s`;
  const old = DEBIAN_RUNSC_FLOORS;
  const rows: {
    name: string;
    old: string;
    floor: string;
    floorValue: number;
    key: keyof SandboxBenchFigures;
    fmt: (x: number) => string;
    atLeast: boolean;
    reference?: boolean;
  }[] = [
    {
      name: `create → first exec done (${r.rounds.create} runs)`,
      old: ms(old.create),
      floor: `\`runsc run /bin/true\` ${ms(r.floor.create)}`,
      floorValue: r.floor.create,
      key: "create",
      fmt: ms,
      atLeast: false,
    },
    {
      name: `exec round trip, /bin/true (${r.rounds.exec} runs)`,
      old: ms(old.exec),
      floor: `\`runsc exec /bin/true\` ${ms(r.floor.exec)}`,
      floorValue: r.floor.exec,
      key: "exec",
      fmt: ms,
      atLeast: false,
    },
    {
      name: `stdout throughput, ${r.rounds.streamBytes / 2 ** 20} MiB (${r.rounds.stream} runs)`,
      old: rate(old.streamPiped),
      floor: `\`runsc exec …\` read by Node ${rate(r.floor.streamPiped)}`,
      floorValue: r.floor.streamPiped,
      key: "stream",
      fmt: rate,
      atLeast: true,
    },
    {
      name: "stdout throughput, for reference",
      old: rate(old.stream),
      floor: `\`runsc exec … > /dev/null\` ${rate(r.floor.stream)}`,
      floorValue: r.floor.stream,
      key: "stream",
      fmt: rate,
      atLeast: true,
      reference: true,
    },
  ];
  const head = `| figure | old floor (Debian runsc 2022-12) | raw floor, pinned runsc (median) | ${r.columns.map((c) => `${c.column.label} | ratio | target`).join(" | ")} |`;
  const rule = `|---|---|---|${r.columns.map(() => "---|---|---|").join("")}`;
  const body = rows.map((row) => {
    const cells = r.columns.map(({ column, figures }) => {
      const ratio = figures[row.key] / row.floorValue;
      if (row.reference) return `${row.fmt(figures[row.key])} | ${ratio.toFixed(2)}× | (reference)`;
      const target = column.targets[row.key];
      const met = row.atLeast ? ratio >= target : ratio <= target;
      return `${row.fmt(figures[row.key])} | ${ratio.toFixed(2)}× | ${row.atLeast ? "≥" : "≤"} ${target}× ${met ? "met" : "**missed**"}`;
    });
    return `| ${row.name} | ${row.old} | ${row.floor} | ${cells.join(" | ")} |`;
  });
  return [head, rule, ...body].join("\n");
}
