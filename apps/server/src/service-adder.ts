import type { addService } from "@chalk/rpc";

/**
 * Mounts one protobuf-es service implementation on the server being built, with the server's
 * interceptors (auth, environment, logging, metrics), and registers it with health and reflection.
 */
export type ServiceAdder = <S extends Parameters<typeof addService>[1]>(
  service: S,
  impl: Parameters<typeof addService<S>>[2],
) => void;
