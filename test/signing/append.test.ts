/**
 * The append mechanism on its own, over an in-memory registry and the smallest shared manifest:
 * an OCI index whose entries are descriptors, ours recognised by digest. Concurrent writers act
 * through the interleaving hook (`write`: between our read and our write; `check`: between our
 * write and the read that checks it), so every race is played the same way every time.
 */
import { PublishError, RegistryError } from '../../lib/core/errors';
import type { Descriptor, FetchedManifest } from '../../lib/registry/types';
import {
  appendToManifest,
  type AppendPolicy,
  type AppendSpec,
  type AppendStep,
} from '../../lib/signing/append';
import { MemoryRegistry } from '../support/memory-registry';

const HOST = 'registry.example.com';
const REPO = 'team-a/app';
const TAG = `sha256-${'1'.repeat(64)}`;
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';

const entry = (n: number): Descriptor => ({
  mediaType: 'application/vnd.oci.image.manifest.v1+json',
  digest: `sha256:${n.toString(16).padStart(64, '0')}`,
  size: n,
});
const [A, B, C, OURS, OURS2] = [entry(1), entry(2), entry(3), entry(100), entry(101)] as const;

let registry: MemoryRegistry;
beforeEach(() => {
  registry = new MemoryRegistry(HOST);
});

const indexBytes = (manifests: readonly Descriptor[]): Buffer =>
  Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests }));
const writeIndex = (manifests: readonly Descriptor[]): string =>
  registry.store(REPO, TAG, indexBytes(manifests), OCI_INDEX);
const listed = (): number[] =>
  (registry.manifestAt<{ manifests: Descriptor[] }>(REPO, TAG)?.manifests ?? []).map((d) => d.size);

/** The index as entries; `ours` are the entries this append must leave there. */
function spec(ours: readonly Descriptor[], reupload?: () => Promise<void>): AppendSpec<Descriptor> {
  return {
    what: 'test index',
    read: (fetched: FetchedManifest | undefined, where: string) => {
      if (fetched === undefined) return [];
      if (!('manifests' in fetched.manifest))
        throw new PublishError('SIGNATURE_MANIFEST_INVALID', `${where} is not an index`);
      return fetched.manifest.manifests;
    },
    missing: (entries) => ours.filter((o) => !entries.some((e) => e.digest === o.digest)),
    same: (a, b) => a.digest === b.digest,
    write: (entries) => Promise.resolve({ bytes: indexBytes(entries), mediaType: OCI_INDEX }),
    ...(reupload !== undefined ? { reupload } : {}),
  };
}

const policy = (interleave?: (at: AppendStep) => Promise<void> | void, maxRounds = 4): AppendPolicy => ({
  maxRounds,
  backoff: { attempts: maxRounds, baseDelayMs: 1, maxDelayMs: 2 },
  ...(interleave !== undefined ? { interleave } : {}),
});

const append = (ours: readonly Descriptor[], p: AppendPolicy = policy()) =>
  appendToManifest(registry, REPO, TAG, spec(ours), p);

describe('appendToManifest', () => {
  it('creates the manifest when the tag does not exist', async () => {
    const result = await append([OURS]);
    expect(result).toMatchObject({ rounds: 1, entries: [OURS] });
    expect(result.digest).toBe(registry.manifests.get(`${REPO}:${TAG}`)?.digest);
  });

  it('adds ours after everyone else’s entries', async () => {
    writeIndex([A, B]);
    await append([OURS, OURS2]);
    expect(listed()).toEqual([1, 2, 100, 101]);
  });

  it('writes nothing when ours are all there (rounds: 0)', async () => {
    const digest = writeIndex([A, OURS]);
    registry.calls.length = 0;
    expect(await append([OURS])).toEqual({ digest, entries: [A, OURS], rounds: 0 });
    expect(registry.count('PUT')).toBe(0);
    expect(registry.count('GET manifest')).toBe(1);
  });

  it('starts from a read the caller made, without reading again', async () => {
    writeIndex([A]);
    registry.calls.length = 0;
    await appendToManifest(registry, REPO, TAG, spec([OURS]), policy(), { digest: undefined, entries: [A] });
    expect(registry.calls.map((c) => c.split(' ').slice(0, 2).join(' '))).toEqual([
      'PUT manifest',
      'GET manifest',
    ]);
  });

  it('never overwrites a manifest of another kind', async () => {
    registry.store(REPO, TAG, Buffer.from('{"layers":[]}'), 'x');
    await expect(append([OURS])).toThrowWithCode(PublishError, 'SIGNATURE_MANIFEST_INVALID');
    expect(registry.count('PUT')).toBe(0);
  });

  describe('when a concurrent writer replaces the manifest between our write and our check', () => {
    it('keeps their entry and adds ours once, in a second round', async () => {
      writeIndex([A]);
      const result = await append(
        [OURS],
        policy(({ round, step }) => {
          // They read [A] before our write and write [A, B] after it.
          if (round === 1 && step === 'check') writeIndex([A, B]);
        }),
      );
      expect(result.rounds).toBe(2);
      expect(listed()).toEqual([1, 2, 100]);
    });

    it('puts back an entry of our base that they dropped, though ours survived', async () => {
      writeIndex([A, B]);
      const result = await append(
        [OURS],
        policy(({ round, step }) => {
          if (round === 1 && step === 'check') writeIndex([A, OURS, C]);
        }),
      );
      expect(result.rounds).toBe(2);
      expect(listed()).toEqual([1, 100, 3, 2]);
    });

    it('does not put back our own entry when they hold an equivalent of it', async () => {
      writeIndex([A]);
      const equivalent: Descriptor = { ...OURS, annotations: { by: 'them' } };
      const sameAnnotations = spec([OURS]);
      // Identity includes annotations: theirs is another entry, yet it satisfies `missing`.
      const result = await appendToManifest(
        registry,
        REPO,
        TAG,
        {
          ...sameAnnotations,
          same: (a, b) => a.digest === b.digest && a.annotations?.['by'] === b.annotations?.['by'],
        },
        policy(({ round, step }) => {
          if (round === 1 && step === 'check') writeIndex([A, equivalent]);
        }),
      );
      expect(result.rounds).toBe(1);
      expect(result.entries).toEqual([A, equivalent]);
    });
  });

  describe('when two writers write between each other’s read and write', () => {
    it('loses neither entry: the writer whose entry went missing merges and writes again', async () => {
      writeIndex([A]);
      let theirs: Promise<unknown> = Promise.resolve();
      let releaseThem!: () => void;
      const released = new Promise<void>((resolve) => (releaseThem = resolve));
      let theyWrote!: () => void;
      const written = new Promise<void>((resolve) => (theyWrote = resolve));
      const result = await append(
        [OURS],
        policy(async ({ round, step }) => {
          if (round !== 1) return;
          if (step === 'write') {
            theirs = append(
              [B],
              policy(async (at) => {
                if (at.round === 1 && at.step === 'check') {
                  theyWrote();
                  await released;
                }
              }),
            );
            await written;
          } else {
            releaseThem();
            await theirs;
          }
        }),
      );
      expect(result.rounds).toBe(1);
      await expect(theirs).resolves.toMatchObject({ rounds: 2 });
      expect(listed()).toEqual([1, 100, 2]);
    });
  });

  describe('when the write is refused with BLOB_UNKNOWN', () => {
    const blobUnknown = (): RegistryError =>
      new RegistryError('BLOB_UNKNOWN', HOST, 'blob unknown to registry', { status: 400 });

    it('uploads again and takes another round', async () => {
      registry.failNext('PUT manifest', blobUnknown());
      const reupload = jest.fn(() => Promise.resolve());
      const result = await appendToManifest(registry, REPO, TAG, spec([OURS], reupload), policy());
      expect(reupload).toHaveBeenCalledTimes(1);
      expect(result.rounds).toBe(2);
      expect(listed()).toEqual([100]);
    });

    it('throws it in the last round', async () => {
      registry.failNext('PUT manifest', blobUnknown(), 2);
      await expect(append([OURS], policy(undefined, 2))).toThrowWithCode(RegistryError, 'BLOB_UNKNOWN');
    });
  });

  it('throws any other write error at once', async () => {
    registry.failNext('PUT manifest', new RegistryError('DENIED', HOST, 'HTTP 403'));
    await expect(append([OURS])).toThrowWithCode(RegistryError, 'DENIED');
    expect(registry.count('PUT manifest')).toBe(1);
  });

  it('gives up with CONFLICT_RETRIES_EXHAUSTED when every check finds ours gone', async () => {
    const interleave = jest.fn(({ step }: AppendStep) => {
      if (step === 'check') writeIndex([A]);
    });
    const error = await append([OURS], policy(interleave, 3)).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(PublishError);
    expect(error).toMatchObject({ code: 'CONFLICT_RETRIES_EXHAUSTED' });
    expect((error as Error).message).toContain(`${HOST}/${REPO}:${TAG}`);
    expect(registry.count('PUT manifest')).toBe(3);
    expect(interleave.mock.calls.map(([at]) => `${at.round}:${at.step}`)).toEqual([
      '1:write',
      '1:check',
      '2:write',
      '2:check',
      '3:write',
      '3:check',
    ]);
  });
});
