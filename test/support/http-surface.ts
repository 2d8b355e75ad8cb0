/**
 * Building blocks for unit tests of `handleRequest` (lib/http/surface.ts): a push intake that
 * records what it was handed, a verification surface with no policies over in-memory registries
 * (nothing leaves the process), a logger whose lines the test can read, and request builders.
 */
import type { Policy } from '../../lib/config/types';
import { jsonLogger, type Logger } from '../../lib/core/logger';
import { AdmissionController } from '../../lib/admission/controller';
import type { PushEvent } from '../../lib/events/types';
import type { VerificationAccess } from '../../lib/http/auth';
import type { BodySource } from '../../lib/http/body';
import type { HttpRequest, VerificationSurface } from '../../lib/http/surface';
import { KeyRing } from '../../lib/keys/keyring';
import type { IntakeOutcome, PushIntake } from '../../lib/signing/intake';
import { ImageVerifier } from '../../lib/verification/verifier';
import { MemoryRegistries, verificationConfig } from '../verification/helpers';

/** A PushIntake that accepts everything it is handed, under ids `push-1`, `push-2`, ... */
export class RecordingIntake implements PushIntake {
  /** Every batch `accept` was called with, in order. */
  readonly batches: (readonly PushEvent[])[] = [];

  async accept(events: readonly PushEvent[]): Promise<readonly IntakeOutcome[]> {
    const before = this.accepted.length;
    this.batches.push(events);
    return events.map((event, i) => ({
      $case: 'accepted',
      id: `push-${before + i + 1}`,
      duplicate: false,
      event,
    }));
  }

  /** Every event accepted so far. */
  get accepted(): PushEvent[] {
    return this.batches.flat();
  }
}

/** A verification surface with the given access rules, no witnesses, and `policies` (none by default). */
export function verificationSurface(
  access: VerificationAccess,
  policies: readonly Policy[] = [],
): VerificationSurface & { registries: MemoryRegistries } {
  const registries = new MemoryRegistries();
  const config = verificationConfig([], policies);
  const verifier = new ImageVerifier({
    config,
    registries,
    keys: new KeyRing({ witnesses: [], baseDir: '/nonexistent' }),
    signatures: { bundles: false },
  });
  return { access, verifier, controller: new AdmissionController({ verifier }), registries };
}

/** A debug-level JSON logger whose lines are kept in `lines`. */
export function capturingLogger(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  return { logger: jsonLogger('debug', (line) => lines.push(line)), lines };
}

/** An HttpRequest as an edge would build it; header names lowercase. */
export function httpRequest(
  method: string,
  path: string,
  body: BodySource,
  headers: Readonly<Record<string, string>> = {},
): HttpRequest {
  return { method, path, headers, body };
}

/** A distribution notification envelope with one push of `repository@digest` to `host`. */
export function distributionPush(
  host: string,
  repository = 'team-a/app',
  digest = `sha256:${'a'.repeat(64)}`,
  tag = 'v1',
): unknown {
  return {
    events: [
      {
        id: `${host}-${repository}-${digest.slice(7, 15)}`,
        action: 'push',
        target: {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          digest,
          repository,
          tag,
          url: `http://${host}/v2/${repository}/manifests/${digest}`,
        },
        request: { host },
      },
    ],
  };
}

/** The Content-Type distribution 2.x sends notifications with. */
export const DISTRIBUTION_EVENTS_TYPE = 'application/vnd.docker.distribution.events.v1+json';
