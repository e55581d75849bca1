/**
 * Generated protobuf-es code for the Chalk APIs. Import a service's messages from its subpath, for
 * example `@chalk/proto/sandbox/v1`; this root module only lists which API versions exist.
 */

/** The API packages this module ships, as `.proto` package names. */
export const apiPackages = [
  "chalk.sandbox.v1",
  "chalk.image.v1",
  "chalk.volume.v1",
  "chalk.secrets.v1",
  "chalk.container.v1",
  "chalk.rpc.v1",
] as const;
