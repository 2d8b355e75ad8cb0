/** The one internal shape every registry's push notification is normalized to. */
export interface PushEvent {
  /** Registry host as it appears in image references (`127.0.0.1:5000`, `<acct>.dkr.ecr.<region>.amazonaws.com`). */
  readonly registry: string;
  /** Repository path inside the registry (`team-a/app`). */
  readonly repository: string;
  /** Digest of the pushed manifest (`sha256:<64 hex>`). */
  readonly digest: string;
  /** Tag the push wrote, when it was a push by tag. */
  readonly tag: string | undefined;
  /** Manifest media type, when the event says. */
  readonly mediaType: string | undefined;
  /** Artifact type, when the event says (ECR `artifact-media-type`, OCI artifactType). */
  readonly artifactType: string | undefined;
  /** Which kind of notification it came from. */
  readonly source: PushEventSource;
  /** The notification's own id, for logs and de-duplication. */
  readonly id: string | undefined;
  /**
   * Who pushed, when the event says: distribution's `actor.name`, Harbor's `operator`,
   * CloudTrail's `userIdentity.arn`. Absent when the event names nobody (ECR's own push event).
   */
  readonly pushedBy?: string;
}

/**
 * What a push event came from. `ecr` is ECR's `ECR Image Action`, which names no pusher;
 * `cloudtrail` is CloudTrail's `PutImage` for the same push, which does; `scan` is a push
 * re-driven by its scan result (`ECR Image Scan`, `Inspector2 Scan`, Harbor `SCANNING_COMPLETED`).
 */
export type PushEventSource = 'distribution' | 'ecr' | 'harbor' | 'manual' | 'cloudtrail' | 'scan';

/** Which scanner reported a scan: ECR basic scanning, Amazon Inspector (ECR enhanced scanning), Harbor. */
export type Scanner = 'ecr' | 'inspector' | 'harbor';

/**
 * Findings by severity. `LOW` counts everything below MEDIUM that the scanner reports (Inspector
 * gives only a total for those; Harbor's Negligible and Unknown count here too).
 */
export interface SeverityCounts {
  readonly CRITICAL: number;
  readonly HIGH: number;
  readonly MEDIUM: number;
  readonly LOW: number;
}

/** What a vulnerability scan concluded about one image. */
export type ScanResult =
  | {
      readonly $case: 'complete';
      readonly scanner: Scanner;
      readonly counts: SeverityCounts;
      /** Findings with a fix available, all severities together, when the scanner says (Harbor). */
      readonly fixable: number | undefined;
    }
  /** The scanner ran and failed (unsupported image, scanner error): there is no result to judge. */
  | { readonly $case: 'failed'; readonly scanner: Scanner; readonly detail: string };

/** A scanner's notification that it finished scanning one image. */
export interface ScanEvent {
  readonly registry: string;
  readonly repository: string;
  readonly digest: string;
  /** The tags the notification names (the first one identifies the push it re-drives). */
  readonly tags: readonly string[];
  readonly result: ScanResult;
  readonly id: string | undefined;
}

/** A notification that carried nothing to sign (a blob push, a pull, a failed push). */
export interface IgnoredNotification {
  /** Path of the ignored entry in the input (`events[0]`). */
  readonly field: string;
  readonly reason: string;
}

/** The outcome of normalizing one notification body. */
export interface NormalizedEvents {
  readonly events: readonly PushEvent[];
  readonly ignored: readonly IgnoredNotification[];
  /** Scan results the notification carried (scanner notifications only). */
  readonly scans?: readonly ScanEvent[];
}
