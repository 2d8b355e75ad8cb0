/**
 * BundlePublisher over an in-memory registry: cosign-v3 bundles as OCI referrers, indexed by the
 * registry's referrers API or, without it, in the `sha256-<hex>` fallback index that other writers
 * share (kept, merged and retried like the `.sig` manifest). Bundles are checked with node:crypto.
 */
import { createHash, generateKeyPairSync, type KeyObject } from 'node:crypto';
import type { Signer } from '@sigstore/sign';
import { KeyError, PublishError, RegistryError } from '../../lib/core/errors';
import { parseBundle } from '../../lib/cosign/bundle';
import type { AppendStep } from '../../lib/signing/append';
import { BundlePublisher, type BundleCandidate } from '../../lib/signing/bundle-publisher';
import type { PublisherOptions } from '../../lib/signing/publisher';
import { cosignSign } from '../support/cosign-writer';
import { MemoryRegistry } from '../support/memory-registry';
import { HOST, OCI_MANIFEST, PRIVATE_KEYS, PUBLIC_KEYS, readFallbackBundles } from './fixtures';

const REPO = 'team-a/app';
const BUNDLE = 'application/vnd.dev.sigstore.bundle.v0.3+json';
const CREATED = new Date('2026-01-02T03:04:05.000Z');
const FAST: Partial<PublisherOptions> = { backoff: { attempts: 8, baseDelayMs: 1, maxDelayMs: 2 } };
const cosignKey = generateKeyPairSync('ec', { namedCurve: 'P-256' });

let registry: MemoryRegistry;
let digest: string;
beforeEach(async () => {
  registry = new MemoryRegistry(HOST);
  digest = await registry.pushImage(REPO, 'v1');
});

const subject = () => ({ mediaType: OCI_MANIFEST, digest, size: 100 });
const fallbackTag = () => digest.replace(':', '-');
const publisher = (options: Partial<PublisherOptions> = FAST) => new BundlePublisher(options, () => CREATED);

/** A candidate with a node:crypto signer over a fixture key, counting the signers asked for. */
function candidate(
  id: string,
  witness: 'release' | 'release-rsa' = 'release',
  fail?: Error,
): BundleCandidate & { asked: number } {
  const privateKey: KeyObject = PRIVATE_KEYS[witness];
  const signer: Signer = {
    sign: (data) =>
      Promise.resolve({
        signature: cosignSign(privateKey, data),
        key: { $case: 'publicKey', publicKey: '', hint: `hint-${id}` },
      }),
  };
  const self = {
    id,
    publicKey: PUBLIC_KEYS[witness],
    algorithm: witness === 'release' ? ('ECDSA_SHA_256' as const) : ('RSASSA_PKCS1_V1_5_SHA_256' as const),
    asked: 0,
    signer: (): Promise<Signer> => {
      self.asked++;
      return fail !== undefined ? Promise.reject(fail) : Promise.resolve(signer);
    },
  };
  return self;
}

const indexEntries = () =>
  registry.manifestAt<{ manifests: { digest: string; artifactType?: string }[] }>(REPO, fallbackTag())
    ?.manifests ?? [];

describe('BundlePublisher', () => {
  describe('on a registry without the referrers API', () => {
    it('writes a referrer per candidate and lists it in the fallback index', async () => {
      const result = await publisher().publish(registry, REPO, subject(), [
        candidate('ec'),
        candidate('rsa', 'release-rsa'),
      ]);
      expect(result.outcomes).toEqual([
        { $case: 'written', id: 'ec' },
        { $case: 'written', id: 'rsa' },
      ]);
      expect(readFallbackBundles(registry, REPO, digest).sort()).toEqual(['release', 'release-rsa']);
      const ref = result.written.get('ec') ?? '';
      expect(ref).toMatch(new RegExp(`^${HOST}/${REPO}@sha256:[0-9a-f]{64}$`));
      const referrer = registry.manifestAt<Record<string, unknown>>(REPO, ref.split('@')[1] ?? '');
      expect(referrer).toMatchObject({
        artifactType: BUNDLE,
        config: { mediaType: 'application/vnd.oci.empty.v1+json', size: 2 },
        subject: subject(),
        annotations: {
          'dev.sigstore.bundle.predicateType': 'https://sigstore.dev/cosign/sign/v1',
          'org.opencontainers.image.created': CREATED.toISOString(),
        },
      });
      expect(indexEntries().map((e) => e.artifactType)).toEqual([BUNDLE, BUNDLE]);
    });

    it('writes bundles Signet’s own reader accepts, naming the image by repository', async () => {
      await publisher().publish(registry, REPO, subject(), [candidate('ec')]);
      const [entry] = indexEntries();
      const layer = registry.manifestAt<{ layers: { digest: string }[] }>(REPO, entry?.digest ?? '')
        ?.layers[0];
      const parsed = parseBundle(registry.blobs.get(`${REPO}@${layer?.digest}`) ?? Buffer.alloc(0));
      expect(parsed).toMatchObject({
        source: 'bundle',
        claims: { digests: [digest], subjects: [{ digest, name: `${HOST}/${REPO}` }] },
      });
    });

    it('keeps every index entry someone else wrote', async () => {
      const theirs = await registry.attachBundle(REPO, digest, cosignKey.privateKey);
      await publisher().publish(registry, REPO, subject(), [candidate('ec')]);
      expect(indexEntries().map((e) => e.digest)[0]).toBe(theirs);
      expect(readFallbackBundles(registry, REPO, digest)).toEqual(['unknown', 'release']);
    });
  });

  describe('on a registry with the referrers API', () => {
    it('writes the referrer and leaves the indexing to the registry', async () => {
      registry.referrersApi = true;
      const result = await publisher().publish(registry, REPO, subject(), [candidate('ec')]);
      expect(result.outcomes).toEqual([{ $case: 'written', id: 'ec' }]);
      expect(registry.manifests.has(`${REPO}:${fallbackTag()}`)).toBe(false);
      const listed = await registry.getReferrers(REPO, digest, BUNDLE);
      expect(listed?.manifests.map((d) => d.digest)).toEqual([result.written.get('ec')?.split('@')[1]]);
    });
  });

  describe('when a valid bundle by the candidate’s key is already there', () => {
    it('asks for no signer and writes nothing', async () => {
      await publisher().publish(registry, REPO, subject(), [candidate('ec')]);
      registry.calls.length = 0;
      const again = candidate('ec');
      const result = await publisher().publish(registry, REPO, subject(), [again]);
      expect(result).toEqual({ outcomes: [{ $case: 'present', id: 'ec' }], written: new Map() });
      expect(again.asked).toBe(0);
      expect(registry.count('PUT')).toBe(0);
    });

    it('does not count a bundle by the same key over another digest', async () => {
      await registry.attachBundle(REPO, digest, PRIVATE_KEYS.release, {
        subjectDigest: `sha256:${'e'.repeat(64)}`,
      });
      const result = await publisher().publish(registry, REPO, subject(), [candidate('ec')]);
      expect(result.outcomes).toEqual([{ $case: 'written', id: 'ec' }]);
    });
  });

  describe('when one candidate cannot sign or upload', () => {
    it('fails it and publishes the others', async () => {
      const error = new KeyError('KMS_DISABLED', 'arn:key', 'disabled');
      const result = await publisher().publish(registry, REPO, subject(), [
        candidate('broken', 'release', error),
        candidate('rsa', 'release-rsa'),
      ]);
      expect(result.outcomes).toEqual([
        { $case: 'failed', id: 'broken', error },
        { $case: 'written', id: 'rsa' },
      ]);
      expect([...result.written.keys()]).toEqual(['rsa']);
    });

    it('fails it when the registry refuses the bundle blob', async () => {
      const emptyConfig = `sha256:${createHash('sha256').update('{}').digest('hex')}`;
      registry.fail = (call) =>
        call.startsWith('PUT blob') && !call.endsWith(emptyConfig)
          ? new RegistryError('DENIED', HOST, 'HTTP 403')
          : undefined;
      const result = await publisher().publish(registry, REPO, subject(), [candidate('ec')]);
      expect(result.outcomes).toEqual([{ $case: 'failed', id: 'ec', error: expect.any(RegistryError) }]);
      expect(registry.manifests.has(`${REPO}:${fallbackTag()}`)).toBe(false);
    });
  });

  describe('when looking for existing bundles fails', () => {
    it('throws on a registry that is throttling: it may be hiding one', async () => {
      registry.failNext('GET referrers', new RegistryError('RATE_LIMITED', HOST, 'HTTP 429'));
      await expect(publisher().publish(registry, REPO, subject(), [candidate('ec')])).toThrowWithCode(
        RegistryError,
        'RATE_LIMITED',
      );
      expect(registry.count('PUT')).toBe(0);
    });

    it('writes the fallback index when the registry refuses the referrers API', async () => {
      registry.failNext('GET referrers', new RegistryError('DENIED', HOST, 'HTTP 403'));
      const result = await publisher().publish(registry, REPO, subject(), [candidate('ec')]);
      expect(result.outcomes).toEqual([{ $case: 'written', id: 'ec' }]);
      expect(readFallbackBundles(registry, REPO, digest)).toEqual(['release']);
    });
  });

  describe('when a concurrent writer replaces the fallback index after our write', () => {
    it('merges: their entry stays and ours is listed once', async () => {
      const theirs = {
        mediaType: OCI_MANIFEST,
        digest: `sha256:${'c'.repeat(64)}`,
        size: 1,
        artifactType: BUNDLE,
      };
      const interleave = ({ round, step }: AppendStep): void => {
        if (round === 1 && step === 'check') {
          registry.store(
            REPO,
            fallbackTag(),
            Buffer.from(JSON.stringify({ schemaVersion: 2, manifests: [theirs] })),
            'application/vnd.oci.image.index.v1+json',
          );
        }
      };
      const result = await publisher({ ...FAST, interleave }).publish(registry, REPO, subject(), [
        candidate('ec'),
      ]);
      expect(result.outcomes).toEqual([{ $case: 'written', id: 'ec' }]);
      const digests = indexEntries().map((e) => e.digest);
      expect(digests).toHaveLength(2);
      expect(digests[0]).toBe(theirs.digest);
    });
  });

  describe('when the fallback index cannot be updated', () => {
    it('fails the written bundles with CONFLICT_RETRIES_EXHAUSTED: nobody could find them', async () => {
      const interleave = ({ step }: AppendStep): void => {
        if (step === 'check') registry.manifests.delete(`${REPO}:${fallbackTag()}`);
      };
      const result = await publisher({ ...FAST, maxRounds: 2, interleave }).publish(
        registry,
        REPO,
        subject(),
        [candidate('ec')],
      );
      expect(result.written.size).toBe(0);
      expect(result.outcomes).toEqual([{ $case: 'failed', id: 'ec', error: expect.any(PublishError) }]);
      expect(result.outcomes[0]).toMatchObject({ error: { code: 'CONFLICT_RETRIES_EXHAUSTED' } });
    });

    it('refuses to overwrite a fallback tag that holds an image manifest', async () => {
      registry.store(REPO, fallbackTag(), Buffer.from('{"schemaVersion":2,"layers":[]}'), OCI_MANIFEST);
      const result = await publisher().publish(registry, REPO, subject(), [candidate('ec')]);
      expect(result.outcomes[0]).toMatchObject({
        $case: 'failed',
        error: { code: 'SIGNATURE_MANIFEST_INVALID' },
      });
    });
  });
});

describe('when a candidate proves its envelope (a witness with a log and a TSA)', () => {
  it('asks with the envelope it signed and writes nothing when the proof fails', async () => {
    const down = new Error('log down');
    const asked: string[] = [];
    const proving: BundleCandidate = {
      ...candidate('logged'),
      prove: (envelope) => {
        asked.push(JSON.parse(envelope.envelopeJson).payloadType as string);
        return Promise.reject(down);
      },
    };
    const result = await publisher().publish(registry, REPO, subject(), [proving]);
    expect(result.outcomes).toEqual([{ $case: 'failed', id: 'logged', error: down }]);
    expect(asked).toEqual(['application/vnd.in-toto+json']);
    expect(indexEntries()).toEqual([]);
    expect(registry.calls.filter((c) => c.startsWith('PUT'))).toEqual([]);
  });

  it('does not count a bundle without the timestamp it requires as present', async () => {
    await publisher().publish(registry, REPO, subject(), [candidate('stamped')]);
    const token = Buffer.from('a timestamp token');
    const stamped = (): BundleCandidate => ({
      ...candidate('stamped'),
      prove: () => Promise.resolve({ rfc3161Timestamp: token }),
      requires: { tlogEntry: false, timestamp: true },
    });
    const result = await publisher().publish(registry, REPO, subject(), [stamped()]);
    expect(result.outcomes).toEqual([{ $case: 'written', id: 'stamped' }]);
    expect(indexEntries()).toHaveLength(2);
    const again = await publisher().publish(registry, REPO, subject(), [stamped()]);
    expect(again.outcomes).toEqual([{ $case: 'present', id: 'stamped' }]);
  });

  it('puts the timestamp in the bundle’s verification material', async () => {
    const token = Buffer.from('a timestamp token');
    const proving: BundleCandidate = {
      ...candidate('stamped'),
      prove: () => Promise.resolve({ rfc3161Timestamp: token }),
    };
    await publisher().publish(registry, REPO, subject(), [proving]);
    const referrer = registry.manifestAt<{ layers: { digest: string }[] }>(
      REPO,
      indexEntries()[0]?.digest ?? '',
    );
    const bundle = JSON.parse(
      registry.blobs.get(`${REPO}@${referrer?.layers[0]?.digest ?? ''}`)?.toString() ?? '{}',
    ) as {
      verificationMaterial: {
        timestampVerificationData: { rfc3161Timestamps: { signedTimestamp: string }[] };
      };
    };
    expect(bundle.verificationMaterial.timestampVerificationData.rfc3161Timestamps).toEqual([
      { signedTimestamp: token.toString('base64') },
    ]);
  });
});
