/**
 * The environment of every process the local runtime starts on the host (runsc, the detached
 * wrapper that outlives its parent, the PTY relay, iptables, mount): `PATH` only, never the
 * environment of the process that embeds the runtime, which may hold a server's token or other
 * secrets. `extra` adds what one child needs.
 */
export function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH || "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    ...extra,
  };
}
