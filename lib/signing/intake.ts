/**
 * Where authenticated push events go: each is planned without the network (signature artifacts
 * and pushes no rule covers are ignored at once) and the rest are accepted for signing. The local
 * service accepts into its durable journal; tests may accept straight into the pipeline.
 */
import type { PushEvent, ScanEvent } from '../events/types';

/** What became of one push. */
export type IntakeOutcome =
  /** Durably accepted (or already pending under `id`): it will be signed, or dead-lettered. */
  | {
      readonly $case: 'accepted';
      readonly id: string;
      readonly duplicate: boolean;
      readonly event: PushEvent;
    }
  /** Nothing to sign. */
  | { readonly $case: 'ignored'; readonly reason: string; readonly event: PushEvent };

/** Accepts pushes for signing. Throws only when it cannot accept (the sender should retry). */
export interface PushIntake {
  accept(events: readonly PushEvent[]): Promise<readonly IntakeOutcome[]>;
  /**
   * Accepts scan results: the pushes waiting for them are decided (`accepted` with their ids), and
   * a result no push waits for re-drives its image. Absent: scan results are ignored.
   */
  acceptScans?(scans: readonly ScanEvent[]): Promise<readonly IntakeOutcome[]>;
}
