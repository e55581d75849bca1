/** The request header that names the environment a call acts in. */
export const ENVIRONMENT_HEADER = "x-chalk-environment";
/** The environment of calls that name none. */
export const DEFAULT_ENVIRONMENT = "default";
/** The request header that carries `Bearer <token>`. */
export const AUTHORIZATION_HEADER = "authorization";
/** The address clients use when neither an option nor `CHALK_API_SERVER` names one. */
export const DEFAULT_ADDRESS = "127.0.0.1:50051";
/** Largest message either side accepts, in bytes. Streams carry larger payloads in chunks. */
export const MAX_MESSAGE_BYTES = 8 * 1024 * 1024;

/** Reads `Bearer <token>` from an authorization header value. */
export function bearerToken(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return m?.[1];
}
