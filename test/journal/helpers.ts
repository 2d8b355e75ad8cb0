/** Shared pieces of the journal tests: temporary journals, push events, a settable clock. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PushEvent } from '../../lib/events/types';

/** A push of image number `n` (a distinct digest per n) to a local distribution registry. */
export function pushEvent(n: number, overrides: Partial<PushEvent> = {}): PushEvent {
  return {
    registry: '127.0.0.1:5000',
    repository: 'team-a/app',
    digest: `sha256:${n.toString(16).padStart(64, '0')}`,
    tag: undefined,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    artifactType: undefined,
    source: 'distribution',
    id: `notification-${n}`,
    ...overrides,
  };
}

/** A temporary directory removed by `cleanup`. */
export async function tempDir(): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'signet-journal-'));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** A clock the test moves by hand, in epoch milliseconds. */
export interface FakeClock {
  readonly now: () => number;
  advance(ms: number): void;
}

/** A FakeClock starting at `start`. */
export function fakeClock(start = 1_700_000_000_000): FakeClock {
  let time = start;
  return {
    now: () => time,
    advance: (ms) => {
      time += ms;
    },
  };
}
