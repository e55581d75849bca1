/** Finding a container by name or id, through the SDK. */
import { ChalkError, Code, Container, type ContainerRecord, describeContainer } from "@chalk/container";
import type { SdkConnectOptions } from "./client.js";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** A handle on the container `ref` (an id, else a name). not_found when there is none. */
export function attachContainer(ref: string, sdk: SdkConnectOptions): Promise<Container> {
  return UUID.test(ref) ? Container.fromId(ref, sdk) : Container.fromName(ref, sdk);
}

/** The record of the container `ref`. */
export function containerRecord(ref: string, sdk: SdkConnectOptions): Promise<ContainerRecord> {
  return describeContainer(ref, sdk);
}

/** A container that exec can run in: Running, else failed_precondition naming its status. */
export async function runningContainer(ref: string, sdk: SdkConnectOptions): Promise<Container> {
  const c = await attachContainer(ref, sdk);
  if (c.info.status !== "Running") {
    throw new ChalkError(
      Code.FailedPrecondition,
      `container ${JSON.stringify(c.name)} is ${c.info.status}${c.info.statusMessage ? ` (${c.info.statusMessage})` : ""}; it must be Running`,
    );
  }
  return c;
}
