/** A volume as the server describes it. */
export interface VolumeInfo {
  /** The volume name, unique in its environment. */
  name: string;
  /** When the volume was created. */
  createdAt: Date;
}

/** A regular file in a volume. */
export interface VolumeFileInfo {
  /** Path relative to the volume root, `/`-separated (`inputs/example.txt`). */
  path: string;
  /** Size in bytes. */
  size: number;
  /** Time of the last modification. */
  modifiedAt: Date;
  /** Permission bits (`0o644`). */
  mode: number;
}

/** One page of a listing. */
export interface Page<T> {
  /** The entries of this page. */
  items: T[];
  /** Token for the next page; undefined on the last page. */
  nextPageToken: string | undefined;
}
