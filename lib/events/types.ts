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
}

export type PushEventSource = 'distribution' | 'ecr' | 'harbor' | 'manual';

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
}
