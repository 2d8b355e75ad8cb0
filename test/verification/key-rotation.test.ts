/**
 * A witness whose keys rotate, through the whole verifier: a signature counts when one of the
 * witness's keys verifies it and was valid when it was made (an RFC 3161 time that verifies
 * against the witness's trusted root, else the verification time), and the witness's keys
 * together count as one signer in an attestor set. Keys, signatures and the TSA (@sigstore/mock's,
 * in process) are made here; windows are set around the real clock the verifier reads.
 */
import { createHash, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { initializeTSA } from '@sigstore/mock';
import { parseConfig } from '../../lib/config/load';
import type { Witness } from '../../lib/config/types';
import { keyIdOf } from '../../lib/keys/algorithms';
import { KeyRing } from '../../lib/keys/keyring';
import { ImageVerifier } from '../../lib/verification/verifier';
import { cosignLayer, cosignPayload, cosignSign } from '../support/cosign-writer';
import { MemoryRegistries, MemoryRegistry, policy, verificationConfig } from './helpers';
import { sha256, storeSignatures, timestampAnnotation } from './sigstore-fixtures';

const HOST = 'registry.example';
const REPOSITORY = 'team-a/app';
const DAY = 24 * 60 * 60 * 1000;
const TSA_POLICY = '1.3.6.1.4.1.57264.2';
const SHA256_OID = '2.16.840.1.101.3.4.2.1';

let dir: string;
let registries: MemoryRegistries;
let registry: MemoryRegistry;
let digestCount = 0;

const pair = (): { privateKey: KeyObject; publicKey: KeyObject; pem: string } => {
  const keys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { ...keys, pem: keys.publicKey.export({ type: 'spki', format: 'pem' }).toString() };
};
const oldKey = pair();
const newKey = pair();
const otherKey = pair();

/** Everything but the clock keeps running for real. */
const TIMERS: Extract<Parameters<typeof jest.useFakeTimers>[0], { doNotFake?: unknown }>['doNotFake'] = [
  'hrtime',
  'nextTick',
  'performance',
  'queueMicrotask',
  'requestAnimationFrame',
  'cancelAnimationFrame',
  'requestIdleCallback',
  'cancelIdleCallback',
  'setImmediate',
  'clearImmediate',
  'setInterval',
  'clearInterval',
  'setTimeout',
  'clearTimeout',
];

/** A TSA (in process) whose clock reads `at`, and the trusted root that lists it. */
async function tsaAt(at: Date): Promise<{
  stamp: (signature: Buffer) => Promise<Buffer>;
  root: Record<string, unknown>;
}> {
  // The mock's certificates are valid from the moment they are made: make them at `at`.
  jest.useFakeTimers({ now: at, doNotFake: TIMERS });
  const tsa = await initializeTSA(generateKeyPairSync('ec', { namedCurve: 'P-256' }), at).finally(() =>
    jest.useRealTimers(),
  );
  const der = (view: ArrayBufferView): string =>
    Buffer.from(view.buffer, view.byteOffset, view.byteLength).toString('base64');
  return {
    stamp: async (signature) => {
      const token = await tsa.timestamp({
        artifactHash: createHash('sha256').update(signature).digest(),
        hashAlgorithmOID: SHA256_OID,
        nonce: 42,
        policyOID: TSA_POLICY,
        certReq: true,
      });
      return Buffer.from(token.buffer, token.byteOffset, token.byteLength);
    },
    root: {
      mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
      tlogs: [],
      certificateAuthorities: [],
      ctlogs: [],
      timestampAuthorities: [
        {
          subject: { organization: 'sigstore.mock', commonName: 'tsa' },
          uri: 'https://tsa.example',
          certChain: {
            certificates: [{ rawBytes: der(tsa.intCertificate) }, { rawBytes: der(tsa.rootCertificate) }],
          },
          validFor: { start: '2000-01-01T00:00:00Z' },
        },
      ],
    },
  };
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'signet-rotation-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});
beforeEach(() => {
  registries = new MemoryRegistries();
  registry = registries.add(HOST);
});

const iso = (ms: number): string => new Date(ms).toISOString();

/** A witness as written in a config file in `dir`. */
function witness(name: string, keys: string, extra = ''): Witness {
  const config = parseConfig(`witnesses:\n  - name: ${name}\n${extra}    keys:\n${keys}`, { baseDir: dir });
  return config.witnesses[0] as Witness;
}
const entry = (pem: string, window: { notBefore?: number; notAfter?: number } = {}): string =>
  `      - publicKey: ${JSON.stringify(pem)}\n` +
  (window.notBefore !== undefined ? `        notBefore: ${iso(window.notBefore)}\n` : '') +
  (window.notAfter !== undefined ? `        notAfter: ${iso(window.notAfter)}\n` : '');

/** A fresh image digest signed by each of `signers`, with the annotations each layer gets. */
function signedImage(
  ...signers: { readonly key: KeyObject; readonly annotations?: Record<string, string> }[]
): string {
  digestCount += 1;
  const digest = sha256(Buffer.from(`image ${digestCount}`));
  const payload = cosignPayload(`${HOST}/${REPOSITORY}`, digest);
  storeSignatures(
    registry,
    REPOSITORY,
    digest,
    signers.map(({ key, annotations }) => ({
      layer: cosignLayer(payload, cosignSign(key, payload), annotations ?? {}),
      payload,
    })),
  );
  return `${HOST}/${REPOSITORY}@${digest}`;
}

function verifier(
  witnesses: readonly Witness[],
  sets: { witnesses: string[]; count: number }[],
): ImageVerifier {
  return new ImageVerifier({
    config: verificationConfig(witnesses, [
      policy({ name: 'team-a', images: [`${HOST}/**`], attestors: sets }),
    ]),
    registries,
    keys: new KeyRing({ witnesses, baseDir: dir }),
    signatures: { bundles: false },
  });
}

const decide = async (w: Witness, image: string) => {
  const decision = await verifier([w], [{ witnesses: [w.name], count: 1 }]).verify(image);
  return { decision, result: decision.policies[0]?.attestors[0]?.witnesses[0] };
};

describe('a witness with an old and a new key', () => {
  const now = Date.now();
  const release = (): Witness =>
    witness(
      'release',
      entry(newKey.pem, { notBefore: now - DAY }) + entry(oldKey.pem, { notAfter: now + DAY }),
    );

  it.each([
    ['the old key', oldKey],
    ['the new key', newKey],
  ])('admits a signature by %s inside its window, naming that key as the signer', async (_name, key) => {
    const { decision, result } = await decide(release(), signedImage({ key: key.privateKey }));
    expect(decision.allowed).toBe(true);
    expect(result?.signature).toMatchObject({ signer: keyIdOf(key.publicKey), signedAt: undefined });
  });

  it('denies a signature by a key no longer listed with UNTRUSTED_SIGNER', async () => {
    const newOnly = witness('release', entry(newKey.pem, { notBefore: now - DAY }));
    const { decision, result } = await decide(newOnly, signedImage({ key: oldKey.privateKey }));
    expect(decision.allowed).toBe(false);
    expect(result?.reason?.code).toBe('UNTRUSTED_SIGNER');
  });
});

describe('when a key is used outside its window', () => {
  const now = Date.now();

  it('denies a signature by an expired key, without a signed time, with KEY_NOT_VALID_AT_SIGNING', async () => {
    const w = witness('release', entry(newKey.pem) + entry(oldKey.pem, { notAfter: now - DAY }));
    const { decision, result } = await decide(w, signedImage({ key: oldKey.privateKey }));
    expect(decision.allowed).toBe(false);
    expect(result?.reason?.code).toBe('KEY_NOT_VALID_AT_SIGNING');
    expect(result?.reason?.message).toContain('verification time');
  });

  it('denies a signature by a key not valid yet', async () => {
    const w = witness('release', entry(newKey.pem, { notBefore: now + DAY }) + entry(oldKey.pem));
    const { result } = await decide(w, signedImage({ key: newKey.privateKey }));
    expect(result?.reason?.code).toBe('KEY_NOT_VALID_AT_SIGNING');
  });

  it('still admits the image when another signature by a valid key is there', async () => {
    const w = witness('release', entry(newKey.pem) + entry(oldKey.pem, { notAfter: now - DAY }));
    const { decision, result } = await decide(
      w,
      signedImage({ key: oldKey.privateKey }, { key: newKey.privateKey }),
    );
    expect(decision.allowed).toBe(true);
    expect(result?.signature?.signer).toBe(keyIdOf(newKey.publicKey));
  });
});

describe('when one of its keys cannot be loaded', () => {
  const w = (): Witness =>
    witness('release', entry(newKey.pem) + '      - publicKey: file://retired/missing.pub\n');

  it('still admits a signature by a key that loads', async () => {
    const { decision } = await decide(w(), signedImage({ key: newKey.privateKey }));
    expect(decision.allowed).toBe(true);
  });

  it('denies with KEY_UNAVAILABLE, not UNTRUSTED_SIGNER, when no loaded key verifies', async () => {
    const { decision, result } = await decide(w(), signedImage({ key: oldKey.privateKey }));
    expect(decision.allowed).toBe(false);
    expect(result?.reason).toMatchObject({ code: 'KEY_UNAVAILABLE', keyCode: 'KEY_UNREADABLE' });
  });
});

describe('with an RFC 3161 timestamp', () => {
  const now = Date.now();
  // Whole seconds: the mock TSA writes milliseconds that do not always parse.
  const stampedAt = new Date(Math.floor((now - 10 * DAY) / 1000) * 1000);
  const expired = { notAfter: now - 5 * DAY };

  async function stampedImage(tsa: Awaited<ReturnType<typeof tsaAt>>): Promise<string> {
    digestCount += 1;
    const digest = sha256(Buffer.from(`stamped ${digestCount}`));
    const payload = cosignPayload(`${HOST}/${REPOSITORY}`, digest);
    const signature = cosignSign(oldKey.privateKey, payload);
    const annotations = {
      'dev.sigstore.cosign/rfc3161timestamp': timestampAnnotation(await tsa.stamp(signature)),
    };
    storeSignatures(registry, REPOSITORY, digest, [
      { layer: cosignLayer(payload, signature, annotations), payload },
    ]);
    return `${HOST}/${REPOSITORY}@${digest}`;
  }

  it('judges the key at the timestamp: admitted when it was valid then, though expired now', async () => {
    const tsa = await tsaAt(stampedAt);
    await writeFile(path.join(dir, 'tsa-root.json'), JSON.stringify(tsa.root));
    const w = witness(
      'release',
      entry(newKey.pem) + entry(oldKey.pem, expired),
      '    trustedRoot: file://tsa-root.json\n',
    );
    const { decision, result } = await decide(w, await stampedImage(tsa));
    expect(decision.allowed).toBe(true);
    expect(result?.signature).toMatchObject({
      signer: keyIdOf(oldKey.publicKey),
      signedAt: stampedAt.toISOString(),
      timeSource: 'tsa',
    });
  });

  it('ignores a timestamp from a TSA the trusted root does not list: judged now, denied', async () => {
    const trusted = await tsaAt(stampedAt);
    const untrusted = await tsaAt(stampedAt);
    await writeFile(path.join(dir, 'other-root.json'), JSON.stringify(trusted.root));
    const w = witness(
      'release',
      entry(newKey.pem) + entry(oldKey.pem, expired),
      '    trustedRoot: file://other-root.json\n',
    );
    const { result } = await decide(w, await stampedImage(untrusted));
    expect(result?.reason?.code).toBe('KEY_NOT_VALID_AT_SIGNING');
  });
});

describe('in an attestor set', () => {
  const release = (): Witness => witness('release', entry(newKey.pem) + entry(oldKey.pem));
  const other = (): Witness => witness('other', entry(otherKey.pem));

  it('counts the two keys of one witness as one signer', async () => {
    const image = signedImage({ key: oldKey.privateKey }, { key: newKey.privateKey });
    const decision = await verifier(
      [release(), other()],
      [{ witnesses: ['release', 'other'], count: 2 }],
    ).verify(image);
    expect(decision.allowed).toBe(false);
    expect(decision.reason?.code).toBe('INSUFFICIENT_WITNESSES');
  });

  it('admits with one signature of each witness', async () => {
    const image = signedImage({ key: oldKey.privateKey }, { key: otherKey.privateKey });
    const decision = await verifier(
      [release(), other()],
      [{ witnesses: ['release', 'other'], count: 2 }],
    ).verify(image);
    expect(decision.allowed).toBe(true);
  });
});
