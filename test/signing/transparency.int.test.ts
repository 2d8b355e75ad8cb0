/**
 * Witnesses with a transparency log and a timestamp authority: @sigstore/mock's Rekor and TSA on
 * 127.0.0.1 (real HTTP, test/support/sigstore-services.ts), a KMS key through the local KMS
 * endpoint and a file key, an in-memory registry. What Signet writes is checked with node:crypto
 * (the SET with the log's key, the timestamp with the TSA's), with Signet's own Sigstore checks
 * (keyed-with-log, against a trusted root listing the mock's keys) and with @sigstore/verify (the
 * Sigstore bundle). Each way the log can fail publishes nothing.
 */
import {
  createHash,
  generateKeyPairSync,
  verify,
  X509Certificate as NodeX509,
  type KeyObject,
} from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bundleFromJSON } from '@sigstore/bundle';
import { RFC3161Timestamp } from '@sigstore/core';
import { toSignedEntity, Verifier } from '@sigstore/verify';
import { parseConfig } from '../../lib/config/load';
import type { SignetConfig, Witness } from '../../lib/config/types';
import { RegistryError } from '../../lib/core/errors';
import { silentLogger } from '../../lib/core/logger';
import { KeyRing } from '../../lib/keys/keyring';
import { checkEvidence, checkLogNamesSigner } from '../../lib/sigstore/evidence';
import { prepareSignature } from '../../lib/sigstore/material';
import { materialFromCosignLayer, parseTrustedRoot } from '../../lib/sigstore';
import { isFailure } from '../../lib/sigstore/types';
import { classifyReport, isTransientFailure } from '../../lib/signing/durable';
import { SigningPipeline, type SigningReport } from '../../lib/signing/pipeline';
import { ImageVerifier } from '../../lib/verification/verifier';
import { LOCAL_AWS_ENV, setEnv } from '../support/aws-endpoint';
import { fastRetryStrategy, startKmsEndpoint, type KmsEndpoint } from '../support/kms-endpoint';
import { MemoryRegistries, type MemoryRegistry } from '../support/memory-registry';
import { startSigstoreServices, type SigstoreServices } from '../support/sigstore-services';
import { policy, verificationConfig } from '../verification/helpers';
import { HOST, pushEvent } from './fixtures';

jest.setTimeout(30_000);

const BUNDLE = 'dev.sigstore.cosign/bundle';
const TIMESTAMP = 'dev.sigstore.cosign/rfc3161timestamp';
const SIGNATURE = 'dev.cosignproject.cosign/signature';

const fileKey = generateKeyPairSync('rsa', { modulusLength: 2048 });
let restoreEnv: (() => void) | undefined;
let kms: KmsEndpoint;
let kmsPublicKey: KeyObject;
let services: SigstoreServices;
/** A second server: the log's redirects and Locations aim at it; it must never be asked anything. */
let elsewhere: SigstoreServices;
let dir: string;
let config: SignetConfig;
let keys: KeyRing;

beforeAll(async () => {
  restoreEnv = setEnv(LOCAL_AWS_ENV);
  [kms, services, elsewhere] = await Promise.all([
    startKmsEndpoint(),
    startSigstoreServices(),
    startSigstoreServices(),
  ]);
  kmsPublicKey = kms.createKey('ECC_NIST_P256', { alias: 'alias/logged' }).publicKey;
  dir = await mkdtemp(join(tmpdir(), 'signet-tlog-'));
  await mkdir(join(dir, 'keys'));
  await writeFile(join(dir, 'keys', 'rsa.pem'), fileKey.privateKey.export({ type: 'pkcs8', format: 'pem' }));
  const kmsUri = `awskms://${new URL(kms.url).host}/alias/logged`;
  const closed = 'http://127.0.0.1:1';
  config = parseConfig(
    `registries:
  - host: ${HOST}
witnesses:
  - name: kms-logged
    key: ${kmsUri}
    transparencyLog: { url: ${services.url} }
    timestampAuthority: { url: ${services.tsaUrl} }
  - name: rsa-logged
    key: file://keys/rsa.pem
    transparencyLog: { url: ${services.url}/ }
  - name: rsa-plain
    key: file://keys/rsa.pem
  - name: tsa-down
    key: file://keys/rsa.pem
    timestampAuthority: { url: ${closed}/tsr }
signingRules:
  - { name: kms, namespaces: [kms], witness: kms-logged, algorithm: ECDSA_SHA_256, bundle: true }
  - { name: rsa, namespaces: [rsa], witness: rsa-logged, algorithm: RSASSA_PKCS1_V1_5_SHA_256 }
  - { name: plain, namespaces: [plain], witness: rsa-plain, algorithm: RSASSA_PKCS1_V1_5_SHA_256 }
  - { name: tsa-down, namespaces: [tsa-down], witness: tsa-down, algorithm: RSASSA_PKCS1_V1_5_SHA_256 }
`,
    { baseDir: dir, source: join(dir, 'signet.yaml') },
  );
  keys = new KeyRing(
    { witnesses: config.witnesses, baseDir: dir },
    { kms: { clientConfig: { retryStrategy: fastRetryStrategy(2) } } },
  );
  elsewhere.mode = 'ok';
});

afterAll(async () => {
  keys?.close();
  await Promise.all([kms?.close(), services?.close(), elsewhere?.close()]);
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  restoreEnv?.();
});

let registry: MemoryRegistry;
let pipeline: SigningPipeline;
beforeEach(() => {
  services.mode = 'ok';
  services.redirectTo = elsewhere.url;
  services.requests.length = 0;
  elsewhere.requests.length = 0;
  const registries = new MemoryRegistries();
  registry = registries.add(HOST);
  pipeline = new SigningPipeline({
    config,
    registries,
    keys,
    logger: silentLogger,
    witnessServices: { timeoutMs: 5_000, maxResponseBytes: 64 * 1024, userAgent: 'signet-test' },
  });
});

async function sign(repository: string): Promise<{ digest: string; report: SigningReport }> {
  const digest = await registry.pushImage(repository, 'v1');
  const report = await pipeline.handlePush(pushEvent(repository, digest));
  return { digest, report };
}

const sha256 = (bytes: Buffer): Buffer => createHash('sha256').update(bytes).digest();

/** The `.sig` layers of `digest` with their payloads. */
function layers(repository: string, digest: string) {
  return registry.signatureLayers(repository, digest).map((layer) => {
    const payload = registry.blobs.get(`${repository}@${layer.digest}`);
    if (payload === undefined) throw new Error(`payload ${layer.digest} missing`);
    const annotations = layer.annotations ?? {};
    return { payload, annotations, signature: Buffer.from(annotations[SIGNATURE] ?? '', 'base64') };
  });
}

interface RekorBundle {
  SignedEntryTimestamp: string;
  Payload: { body: string; integratedTime: number; logIndex: number; logID: string };
}

/** Rekor's SET: its key's signature over the canonical JSON of the entry's four fields. */
function setVerifies(bundle: RekorBundle, key: KeyObject): boolean {
  const { body, integratedTime, logID, logIndex } = bundle.Payload;
  const canonical = JSON.stringify({ body, integratedTime, logID, logIndex });
  return verify('sha256', Buffer.from(canonical), key, Buffer.from(bundle.SignedEntryTimestamp, 'base64'));
}

describe('when a witness has a transparency log and a timestamp authority', () => {
  const repository = 'kms/app';
  let digest: string;
  let report: SigningReport;
  let signed: { registries: MemoryRegistries; registry: MemoryRegistry; pipeline: SigningPipeline };
  beforeAll(async () => {
    // One signing for every check below, on its own registry.
    const registries = new MemoryRegistries();
    signed = {
      registries,
      registry: registries.add(HOST),
      pipeline: new SigningPipeline({ config, registries, keys, logger: silentLogger }),
    };
    digest = await signed.registry.pushImage(repository, 'v1');
    report = await signed.pipeline.handlePush(pushEvent(repository, digest));
  });
  beforeEach(() => {
    registry = signed.registry;
    pipeline = signed.pipeline;
  });

  it('signs, with the log entry and timestamp on the layer', () => {
    expect(report.outcomes.map((o) => [o.rule, o.status, o.bundle])).toEqual([['kms', 'signed', 'written']]);
    const [layer, ...rest] = layers(repository, digest);
    expect(rest).toHaveLength(0);
    expect(layer?.annotations[BUNDLE]).toBeDefined();
    expect(layer?.annotations[TIMESTAMP]).toBeDefined();
  });

  it('carries a SET that verifies with the log’s key, over the hashedrekord Signet sent', () => {
    const layer = layers(repository, digest)[0];
    if (layer === undefined) throw new Error('no layer');
    const bundle = JSON.parse(layer.annotations[BUNDLE] ?? '') as RekorBundle;
    expect(setVerifies(bundle, services.rekorKey)).toBe(true);
    expect(setVerifies(bundle, elsewhere.rekorKey)).toBe(false);
    expect(bundle.Payload.logID).toBe(services.logId.toString('hex'));
    const body = JSON.parse(Buffer.from(bundle.Payload.body, 'base64').toString('utf8')) as {
      kind: string;
      apiVersion: string;
      spec: {
        data: { hash: { algorithm: string; value: string } };
        signature: { content: string; publicKey: { content: string } };
      };
    };
    expect(body.kind).toBe('hashedrekord');
    expect(body.apiVersion).toBe('0.0.1');
    expect(body.spec.data.hash).toEqual({
      algorithm: 'sha256',
      value: sha256(layer.payload).toString('hex'),
    });
    expect(Buffer.from(body.spec.signature.content, 'base64')).toEqual(layer.signature);
    expect(Buffer.from(body.spec.signature.publicKey.content, 'base64').toString()).toBe(
      kmsPublicKey.export({ type: 'spki', format: 'pem' }),
    );
  });

  it('carries an RFC 3161 timestamp over the signature, signed by the TSA', () => {
    const layer = layers(repository, digest)[0];
    if (layer === undefined) throw new Error('no layer');
    const doc = JSON.parse(layer.annotations[TIMESTAMP] ?? '') as { SignedRFC3161Timestamp: string };
    const ts = RFC3161Timestamp.parse(Buffer.from(doc.SignedRFC3161Timestamp, 'base64'));
    expect(ts.status).toBe(0n);
    expect(ts.tstInfo.messageImprintHashedMessage).toEqual(sha256(layer.signature));
    const tsaKey = new NodeX509(services.tsaCertificates[1] as Buffer).publicKey;
    expect(() => ts.verify(layer.signature, tsaKey)).not.toThrow();
    expect(() => ts.verify(Buffer.from('another signature'), tsaKey)).toThrow();
  });

  it('verifies keyed-with-log through Signet’s Sigstore checks and a trusted root of the mock’s keys', () => {
    const layer = layers(repository, digest)[0];
    if (layer === undefined) throw new Error('no layer');
    const root = parseTrustedRoot(services.trustedRoot(), 'mock');
    const material = materialFromCosignLayer(layer.payload, layer.annotations);
    if (isFailure(material)) throw new Error(material.detail);
    const prepared = prepareSignature(material);
    if (isFailure(prepared)) throw new Error(prepared.detail);
    const times = checkEvidence(prepared.entity, kmsPublicKey, root.material, {
      tlogEntries: 1,
      timestamps: 2,
    });
    if (isFailure(times)) throw new Error(times.detail);
    expect(times.map((t) => t.source).sort()).toEqual(['tlog', 'tsa']);
    expect(checkLogNamesSigner(prepared.entity, kmsPublicKey, undefined)).toBeUndefined();
    // Another log's root does not vouch for this entry.
    const stranger = parseTrustedRoot(elsewhere.trustedRoot(), 'elsewhere');
    const refused = checkEvidence(prepared.entity, kmsPublicKey, stranger.material, {
      tlogEntries: 1,
      timestamps: 1,
    });
    expect(isFailure(refused) ? refused.code : 'verified').toMatch(/TLOG_INVALID|TIMESTAMP_INVALID/);
  });

  it('writes a Sigstore bundle with the dsse log entry and the timestamp, which @sigstore/verify accepts', () => {
    const index = registry.manifestAt<{ manifests: { digest: string }[] }>(
      repository,
      digest.replace(':', '-'),
    );
    const referrer = registry.manifestAt<{ layers: { digest: string }[] }>(
      repository,
      index?.manifests[0]?.digest ?? '',
    );
    const json = JSON.parse(
      registry.blobs.get(`${repository}@${referrer?.layers[0]?.digest ?? ''}`)?.toString() ?? '{}',
    ) as {
      verificationMaterial: { tlogEntries: { kindVersion: { kind: string }; inclusionPromise: unknown }[] };
    };
    expect(json.verificationMaterial.tlogEntries.map((e) => e.kindVersion.kind)).toEqual(['dsse']);
    expect(json.verificationMaterial.tlogEntries[0]?.inclusionPromise).toBeDefined();
    const bundle = bundleFromJSON(json);
    const root = parseTrustedRoot(services.trustedRoot(), 'mock');
    const trust = { ...root.material, publicKey: () => ({ publicKey: kmsPublicKey, validFor: () => true }) };
    const verifier = new Verifier(trust, { tlogThreshold: 1, ctlogThreshold: 0, timestampThreshold: 2 });
    expect(() => verifier.verify(toSignedEntity(bundle))).not.toThrow();
  });

  it('is admitted by Signet’s verifier with the witness’s public key', async () => {
    const witness: Witness = {
      name: 'release',
      key: { $case: 'publicKeyPem', pem: kmsPublicKey.export({ type: 'spki', format: 'pem' }).toString() },
      description: undefined,
    };
    const verifier = new ImageVerifier({
      config: verificationConfig(
        [witness],
        [
          policy({
            name: 'kms',
            images: [`${HOST}/kms/**`],
            attestors: [{ witnesses: ['release'], count: 1 }],
          }),
        ],
      ),
      registries: signed.registries,
      keys: new KeyRing({ witnesses: [witness], baseDir: dir }),
      signatures: { bundles: false },
    });
    const decision = await verifier.verify(`${HOST}/${repository}:v1`, { namespace: 'prod' });
    expect(decision).toMatchObject({ allowed: true, digest });
  });

  it('asks the log and the TSA nothing when the signature is already there', async () => {
    services.requests.length = 0;
    const again = await pipeline.handlePush(pushEvent(repository, digest));
    expect(again.outcomes.map((o) => o.status)).toEqual(['already-signed']);
    expect(services.requests).toEqual([]);
  });
});

describe('when the same RSA signature is logged again (a publish that failed after logging)', () => {
  it('reads the existing entry back from the log (409 Location) and publishes', async () => {
    registry.failNext('PUT manifest', new RegistryError('UNAVAILABLE', HOST, 'down'));
    const first = await sign('rsa/app');
    expect(first.report.outcomes[0]?.status).toBe('failed');
    expect(layers('rsa/app', first.digest)).toEqual([]);
    const again = await pipeline.handlePush(pushEvent('rsa/app', first.digest));
    expect(again.outcomes.map((o) => o.status)).toEqual(['signed']);
    const posts = services.requests.filter((r) => r.method === 'POST').length;
    const gets = services.requests.filter((r) => r.method === 'GET').length;
    expect([posts, gets]).toEqual([2, 1]);
    const bundle = JSON.parse(layers('rsa/app', first.digest)[0]?.annotations[BUNDLE] ?? '') as RekorBundle;
    expect(setVerifies(bundle, services.rekorKey)).toBe(true);
  });
});

describe('when the log or the TSA fails', () => {
  const failed = async (repository: string): Promise<{ code: string | undefined; digest: string }> => {
    const { digest, report } = await sign(repository);
    const [outcome] = report.outcomes;
    expect(outcome?.status).toBe('failed');
    // Nothing published: no layer, no payload blob.
    expect(layers(repository, digest)).toEqual([]);
    expect(registry.calls.filter((c) => c.startsWith('PUT'))).toEqual([]);
    return { code: outcome?.errorCode, digest };
  };

  it('is a transient failure while the log is down, retried by the journal, signed once it is back', async () => {
    services.mode = 'down';
    const { digest, report } = await sign('rsa/down');
    expect(report.outcomes.map((o) => [o.status, o.errorCode])).toEqual([['failed', 'TLOG_UNAVAILABLE']]);
    expect(isTransientFailure('TLOG_UNAVAILABLE')).toBe(true);
    expect(classifyReport(report, 0)).toMatchObject({ $case: 'retry', code: 'TLOG_UNAVAILABLE' });
    expect(layers('rsa/down', digest)).toEqual([]);
    expect(registry.calls.filter((c) => c.startsWith('PUT'))).toEqual([]);
    services.mode = 'ok';
    const retried = await pipeline.handlePush(pushEvent('rsa/down', digest));
    expect(retried.outcomes.map((o) => o.status)).toEqual(['signed']);
    expect(layers('rsa/down', digest)[0]?.annotations[BUNDLE]).toBeDefined();
  });

  it('is a transient failure while the TSA is unreachable', async () => {
    const { code } = await failed('tsa-down/app');
    expect(code).toBe('TSA_UNAVAILABLE');
    expect(isTransientFailure(code ?? '')).toBe(true);
  });

  it.each([
    ['answers another entry', 'other-body'],
    ['answers more than the size limit', 'oversized'],
  ] as const)('fails for good when the log %s', async (_, mode) => {
    services.mode = mode;
    const { code } = await failed(`rsa/${mode}`);
    expect(code).toBe('TLOG_ANSWER_INVALID');
    expect(isTransientFailure(code ?? '')).toBe(false);
  });

  it.each([
    ['redirects elsewhere', 'redirect'],
    ['names an existing entry elsewhere', 'conflict-elsewhere'],
  ] as const)('never contacts another host when the log %s', async (_, mode) => {
    services.mode = mode;
    const { code } = await failed(`rsa/${mode}`);
    expect(code).toBe('TLOG_ANSWER_INVALID');
    expect(elsewhere.requests).toEqual([]);
    expect(services.requests.every((r) => r.host === new URL(services.url).host)).toBe(true);
  });
});
