/**
 * SignaturePublisher over an in-memory registry: one `.sig` layer per candidate, nothing signed or
 * written twice, every other writer's layer kept, and the lost races the append mechanism
 * resolves, played deterministically through its interleaving hook.
 */
import { generateKeyPairSync } from 'node:crypto';
import { KeyError, PublishError, RegistryError } from '../../lib/core/errors';
import type { AppendStep } from '../../lib/signing/append';
import {
  SignaturePublisher,
  type PublisherOptions,
  type SignatureCandidate,
} from '../../lib/signing/publisher';
import { cosignLayer, cosignPayload, cosignSign, type LayerDescriptor } from '../support/cosign-writer';
import { MemoryRegistry } from '../support/memory-registry';
import { HOST, PRIVATE_KEYS, PUBLIC_KEYS, readSignatures } from './fixtures';

const REPO = 'team-a/app';
const FAST: Partial<PublisherOptions> = { backoff: { attempts: 8, baseDelayMs: 1, maxDelayMs: 2 } };
const cosignKey = generateKeyPairSync('ec', { namedCurve: 'P-256' });

let registry: MemoryRegistry;
let digest: string;
beforeEach(async () => {
  registry = new MemoryRegistry(HOST);
  digest = await registry.pushImage(REPO, 'v1');
});

/** A candidate signing with a fixture key, counting its signatures. */
function candidate(
  id: string,
  witness: 'release' | 'release-rsa' = 'release',
  fail?: Error,
): SignatureCandidate & { signed: number } {
  const self = {
    id,
    payload: cosignPayload(`${HOST}/${REPO}`, digest, { 'dev.signet/rule': id }),
    publicKey: PUBLIC_KEYS[witness],
    algorithm: witness === 'release' ? ('ECDSA_SHA_256' as const) : ('RSASSA_PKCS1_V1_5_SHA_256' as const),
    signed: 0,
    sign: (payload: Buffer): Promise<Buffer> => {
      self.signed++;
      return fail !== undefined
        ? Promise.reject(fail)
        : Promise.resolve(cosignSign(PRIVATE_KEYS[witness], payload));
    },
  };
  return self;
}

/** A layer someone else (cosign, with another key) wrote for `digest`. */
function foreignLayer(seed = 'cosign'): LayerDescriptor {
  const payload = cosignPayload(`${HOST}/${REPO}`, digest, { seed });
  registry.storeBlob(REPO, payload);
  return cosignLayer(payload, cosignSign(cosignKey.privateKey, payload));
}

const layersNow = (): LayerDescriptor[] => registry.signatureLayers(REPO, digest);
const witnesses = (): (string | undefined)[] => readSignatures(registry, REPO, digest).map((s) => s.witness);

describe('SignaturePublisher', () => {
  it('appends one verifiable layer per candidate after the layers already there', async () => {
    const theirs = foreignLayer();
    await registry.putSignatureLayers(REPO, digest, [theirs]);
    const result = await new SignaturePublisher().publish(registry, REPO, digest, [
      candidate('ec'),
      candidate('rsa', 'release-rsa'),
    ]);
    expect(result).toMatchObject({
      outcomes: [
        { $case: 'written', id: 'ec' },
        { $case: 'written', id: 'rsa' },
      ],
      signatureTag: `${REPO}:${digest.replace(':', '-')}.sig`,
      rounds: 1,
    });
    expect(result.manifestDigest).toBe(
      registry.manifests.get(`${REPO}:${digest.replace(':', '-')}.sig`)?.digest,
    );
    expect(layersNow()[0]).toEqual(theirs);
    expect(witnesses()).toEqual([undefined, 'release', 'release-rsa']);
  });

  describe('when a valid signature by the same key is already there', () => {
    it('neither signs nor writes, even when another writer made it', async () => {
      const ours = candidate('ec');
      await registry.sign(REPO, digest, PRIVATE_KEYS.release, { payload: ours.payload });
      registry.calls.length = 0;
      const result = await new SignaturePublisher().publish(registry, REPO, digest, [ours]);
      expect(result).toMatchObject({ outcomes: [{ $case: 'present', id: 'ec' }], rounds: 0 });
      expect(ours.signed).toBe(0);
      expect(registry.count('PUT')).toBe(0);
    });
  });

  describe('when a candidate cannot sign', () => {
    it('fails that candidate and writes the others', async () => {
      const error = new KeyError('KMS_DISABLED', 'arn:key', 'disabled');
      const result = await new SignaturePublisher().publish(registry, REPO, digest, [
        candidate('broken', 'release', error),
        candidate('ec'),
      ]);
      expect(result.outcomes).toEqual([
        { $case: 'failed', id: 'broken', error },
        { $case: 'written', id: 'ec' },
      ]);
      expect(witnesses()).toEqual(['release']);
    });

    it('writes nothing when none can', async () => {
      const result = await new SignaturePublisher().publish(registry, REPO, digest, [
        candidate('broken', 'release', new Error('no')),
      ]);
      expect(result).toMatchObject({ outcomes: [{ $case: 'failed' }], rounds: 0, manifestDigest: undefined });
      expect(registry.count('PUT manifest')).toBe(0);
    });
  });

  it('refuses to overwrite a signature tag that holds something else', async () => {
    registry.store(REPO, `${digest.replace(':', '-')}.sig`, Buffer.from('{"manifests":[]}'), 'x');
    await expect(new SignaturePublisher().publish(registry, REPO, digest, [candidate('ec')])).toThrowWithCode(
      PublishError,
      'SIGNATURE_MANIFEST_INVALID',
    );
    expect(registry.count('PUT manifest')).toBe(0);
  });

  describe('in one process', () => {
    it('serializes work on one digest: the same candidate twice signs once', async () => {
      const publisher = new SignaturePublisher();
      const ours = candidate('ec');
      const [first, second] = await Promise.all([
        publisher.publish(registry, REPO, digest, [ours]),
        publisher.publish(registry, REPO, digest, [ours]),
      ]);
      expect([first.outcomes[0]?.$case, second.outcomes[0]?.$case]).toEqual(['written', 'present']);
      expect(ours.signed).toBe(1);
      expect(layersNow()).toHaveLength(1);
    });
  });

  describe('when a concurrent writer replaces the manifest between our write and our check', () => {
    it('keeps their layer and adds ours once, in a second round', async () => {
      let base: LayerDescriptor[] = [];
      const theirs = foreignLayer();
      const interleave = async ({ round, step }: AppendStep): Promise<void> => {
        if (round !== 1) return;
        // They read before our write, and write after it: their manifest lacks our layer.
        if (step === 'write') base = layersNow();
        else await registry.putSignatureLayers(REPO, digest, [...base, theirs]);
      };
      const result = await new SignaturePublisher({ ...FAST, interleave }).publish(registry, REPO, digest, [
        candidate('ec'),
      ]);
      expect(result).toMatchObject({ outcomes: [{ $case: 'written' }], rounds: 2 });
      expect(witnesses()).toEqual([undefined, 'release']);
    });

    it('writes no second signature when theirs is an equivalent of ours (same payload and key)', async () => {
      const ours = candidate('ec');
      const interleave = async ({ round, step }: AppendStep): Promise<void> => {
        if (round !== 1 || step !== 'check') return;
        // Another Signet process signed the same payload with the same key (ECDSA: other bytes).
        await registry.putSignatureLayers(REPO, digest, [
          cosignLayer(ours.payload, cosignSign(PRIVATE_KEYS.release, ours.payload)),
        ]);
      };
      const result = await new SignaturePublisher({ ...FAST, interleave }).publish(registry, REPO, digest, [
        ours,
      ]);
      expect(result).toMatchObject({ outcomes: [{ $case: 'present' }], rounds: 1 });
      expect(witnesses()).toEqual(['release']);
    });
  });

  describe('when two processes write between each other’s read and write', () => {
    it('loses neither layer: the writer whose layer went missing merges and writes again', async () => {
      const gate = (): { promise: Promise<void>; open: () => void } => {
        let open!: () => void;
        return { promise: new Promise<void>((resolve) => (open = resolve)), open };
      };
      const bWrote = gate();
      const releaseB = gate();
      let bDone: Promise<unknown> = Promise.resolve();
      const other = new SignaturePublisher({
        ...FAST,
        interleave: async ({ round, step }) => {
          if (round === 1 && step === 'check') {
            bWrote.open();
            await releaseB.promise;
          }
        },
      });
      const rsa = candidate('rsa', 'release-rsa');
      const publisher = new SignaturePublisher({
        ...FAST,
        interleave: async ({ round, step }) => {
          if (round !== 1) return;
          if (step === 'write') {
            // B reads the same manifest as we did and writes first.
            bDone = other.publish(registry, REPO, digest, [rsa]);
            await bWrote.promise;
          } else {
            // Our write replaced B's; B's check finds its layer gone and writes it back.
            releaseB.open();
            await bDone;
          }
        },
      });
      const result = await publisher.publish(registry, REPO, digest, [candidate('ec')]);
      const theirs = (await bDone) as Awaited<ReturnType<SignaturePublisher['publish']>>;
      expect(result).toMatchObject({ outcomes: [{ $case: 'written' }], rounds: 1 });
      expect(theirs).toMatchObject({ outcomes: [{ $case: 'written' }], rounds: 2 });
      expect(witnesses().sort()).toEqual(['release', 'release-rsa']);
    });
  });

  describe('when the registry forgets a blob the manifest names (BLOB_UNKNOWN)', () => {
    it('uploads the payload again and takes another round', async () => {
      const ours = candidate('ec');
      let forgotten = false;
      registry.before = (call) => {
        if (!forgotten && call.startsWith('PUT manifest')) {
          forgotten = true;
          registry.deleteBlob(REPO, cosignLayer(ours.payload, Buffer.alloc(0)).digest);
        }
      };
      const result = await new SignaturePublisher(FAST).publish(registry, REPO, digest, [ours]);
      expect(result).toMatchObject({ outcomes: [{ $case: 'written' }], rounds: 2 });
      expect(registry.count('PUT manifest')).toBe(2);
      expect(witnesses()).toEqual(['release']);
    });

    it('gives up with BLOB_UNKNOWN in the last round', async () => {
      registry.failNext(
        'PUT manifest',
        new RegistryError('BLOB_UNKNOWN', HOST, 'blob unknown', { status: 400 }),
      );
      await expect(
        new SignaturePublisher({ ...FAST, maxRounds: 1 }).publish(registry, REPO, digest, [candidate('ec')]),
      ).toThrowWithCode(RegistryError, 'BLOB_UNKNOWN');
    });
  });

  describe('when concurrent writers keep replacing the manifest', () => {
    it('gives up after maxRounds with CONFLICT_RETRIES_EXHAUSTED', async () => {
      const theirs = foreignLayer();
      const interleave = async ({ step }: AppendStep): Promise<void> => {
        if (step === 'check') await registry.putSignatureLayers(REPO, digest, [theirs]);
      };
      await expect(
        new SignaturePublisher({ ...FAST, maxRounds: 3, interleave }).publish(registry, REPO, digest, [
          candidate('ec'),
        ]),
      ).toThrowWithCode(PublishError, 'CONFLICT_RETRIES_EXHAUSTED');
      expect(registry.count('PUT manifest')).toBe(3);
    });
  });
});

describe('when a candidate proves its signature (a witness with a transparency log)', () => {
  const LOGGED = 'dev.sigstore.cosign/bundle';
  const proving = (prove: (signature: Buffer) => Promise<Record<string, string>>) => ({
    ...candidate('logged', 'release-rsa'),
    prove,
    requiredAnnotations: [LOGGED],
  });

  it('writes the proof next to the signature', async () => {
    const result = await new SignaturePublisher().publish(registry, REPO, digest, [
      proving((signature) => Promise.resolve({ [LOGGED]: `entry for ${signature.length}` })),
    ]);
    expect(result.outcomes).toEqual([{ $case: 'written', id: 'logged' }]);
    expect(layersNow()[0]?.annotations?.[LOGGED]).toBe('entry for 256');
  });

  it('publishes nothing, not even the payload, when the proof fails', async () => {
    const down = new Error('log down');
    const result = await new SignaturePublisher().publish(registry, REPO, digest, [
      proving(() => Promise.reject(down)),
    ]);
    expect(result.outcomes).toEqual([{ $case: 'failed', id: 'logged', error: down }]);
    expect(layersNow()).toEqual([]);
    expect(registry.calls.filter((c) => c.startsWith('PUT'))).toEqual([]);
  });

  it('does not count a layer of the same signature without the proof as present', async () => {
    // Signed before the witness had a log: same payload, same (deterministic RSA) signature.
    await new SignaturePublisher().publish(registry, REPO, digest, [candidate('logged', 'release-rsa')]);
    const result = await new SignaturePublisher().publish(registry, REPO, digest, [
      proving(() => Promise.resolve({ [LOGGED]: 'entry' })),
    ]);
    expect(result.outcomes).toEqual([{ $case: 'written', id: 'logged' }]);
    expect(layersNow().map((l) => l.annotations?.[LOGGED])).toEqual([undefined, 'entry']);
    const again = await new SignaturePublisher().publish(registry, REPO, digest, [
      proving(() => Promise.reject(new Error('not asked'))),
    ]);
    expect(again.outcomes).toEqual([{ $case: 'present', id: 'logged' }]);
  });
});
