/**
 * KMS witnesses end to end: images signed by Signet's pipeline with keys held in a local KMS (real
 * SDK client, real signatures), verified with the same witnesses through their cached
 * GetPublicKey; a KMS failure denies with KEY_UNAVAILABLE, or warns under failurePolicy: allow.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../../lib/config/load';
import type { SignetConfig } from '../../lib/config/types';
import { silentLogger } from '../../lib/core/logger';
import { parseReference } from '../../lib/core/reference';
import { KeyRing } from '../../lib/keys/keyring';
import { RegistryClients } from '../../lib/registry/clients';
import { createSignet } from '../../lib/signet';
import { ImageVerifier } from '../../lib/verification/verifier';
import { LOCAL_AWS_ENV, setEnv } from '../support/aws-endpoint';
import { makeImage, skopeoCopy } from '../support/images';
import { fastRetryStrategy, startKmsEndpoint, type KmsEndpoint } from '../support/kms-endpoint';
import { startTestRegistry, type TestRegistry } from '../support/registry';

let restoreEnv: (() => void) | undefined;

let kms: KmsEndpoint;
let registry: TestRegistry;
let dir: string;
let config: SignetConfig;
const rings: KeyRing[] = [];

function configYaml(rsaKeyId: string, ecKeyId: string, failurePolicy: 'deny' | 'allow'): string {
  const endpoint = new URL(kms.url).host;
  return `
registries:
  - host: ${registry.host}
    insecure: true
witnesses:
  - name: kms-rsa
    key: awskms://${endpoint}/${rsaKeyId}
  - name: kms-ec
    key: awskms://${endpoint}/${ecKeyId}
signingRules:
  - name: rsa
    repositories: ["**"]
    witness: kms-rsa
    algorithm: RSASSA_PKCS1_V1_5_SHA_256
    trigger: manual
  - name: ec
    repositories: ["**"]
    witness: kms-ec
    algorithm: ECDSA_SHA_384
    signatureType: simple
    trigger: manual
policies:
  - name: kms
    enabled: true
    images: ["${registry.host}/**"]
    failurePolicy: ${failurePolicy}
    attestors:
      - witnesses: [kms-rsa]
      - witnesses: [kms-ec]
`;
}

function verifier(cfg: SignetConfig): { verifier: ImageVerifier } {
  const keys = new KeyRing(
    { witnesses: cfg.witnesses, baseDir: cfg.baseDir },
    { kms: { clientConfig: { retryStrategy: fastRetryStrategy(2) } } },
  );
  rings.push(keys);
  const registries = new RegistryClients(cfg.registries, {
    retry: { attempts: 2, baseDelayMs: 1, maxDelayMs: 5 },
  });
  return { verifier: new ImageVerifier({ config: cfg, registries, keys, logger: silentLogger }) };
}

let image: string;
let rsaKeyId: string;
let ecKeyId: string;

beforeAll(async () => {
  restoreEnv = setEnv(LOCAL_AWS_ENV);
  kms = await startKmsEndpoint();
  registry = await startTestRegistry();
  dir = await mkdtemp(join(tmpdir(), 'signet-kms-verify-'));
  rsaKeyId = kms.createKey('RSA_2048').keyId;
  ecKeyId = kms.createKey('ECC_NIST_P384', { alias: 'alias/signet-ec' }).keyId;
  config = parseConfig(configYaml(rsaKeyId, 'alias/signet-ec', 'deny'), { baseDir: dir });
  const layout = join(dir, 'layout');
  await makeImage(layout, { seed: 'kms' });
  await skopeoCopy(layout, `${registry.host}/team/app:v1`);
  image = `${registry.host}/team/app:v1`;
  const signet = createSignet(config, { logger: silentLogger });
  for (const rule of ['rsa', 'ec']) {
    const report = await signet.pipeline.signImage(parseReference(image), rule);
    expect(report.outcomes.map((o) => o.status)).toEqual(['signed']);
  }
  signet.keys.close();
});

afterAll(async () => {
  for (const ring of rings) ring.close();
  await kms?.close();
  await registry?.stop();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  restoreEnv?.();
});

describe('KMS witnesses', () => {
  it('verify the pipeline signatures (RSA PKCS#1 and ECDSA P-384), asking KMS for each public key once', async () => {
    const { verifier: v } = verifier(config);
    const before = kms.count('GetPublicKey');
    const decision = await v.verify(image);
    expect(decision.allowed).toBe(true);
    expect(decision.policies[0]?.attestors.map((a) => a.witnesses[0]?.signature?.algorithm)).toEqual([
      'RSASSA_PKCS1_V1_5_SHA_256',
      'ECDSA_SHA_384',
    ]);
    v.clearCache();
    expect((await v.verify(image)).allowed).toBe(true);
    expect(kms.count('GetPublicKey') - before).toBe(2);
    expect(kms.count('Sign')).toBe(2);
  });

  it('deny with KEY_UNAVAILABLE when KMS keeps throttling', async () => {
    const { verifier: v } = verifier(config);
    kms.throttleRate('DescribeKey', 1);
    try {
      const decision = await v.verify(image);
      expect(decision).toMatchObject({
        allowed: false,
        reason: { code: 'KEY_UNAVAILABLE', keyCode: 'KMS_THROTTLED' },
      });
    } finally {
      kms.throttleRate('DescribeKey', 0);
    }
  });

  it('warn instead under failurePolicy: allow when KMS is down', async () => {
    const lenient = parseConfig(configYaml(rsaKeyId, ecKeyId, 'allow'), { baseDir: dir });
    const { verifier: v } = verifier(lenient);
    kms.throttleRate('DescribeKey', 1);
    try {
      const decision = await v.verify(image);
      expect(decision).toMatchObject({
        allowed: true,
        verdict: 'warn',
        reason: { code: 'KEY_UNAVAILABLE', keyCode: 'KMS_THROTTLED' },
      });
    } finally {
      kms.throttleRate('DescribeKey', 0);
    }
  });

  it('deny a disabled key even under failurePolicy: allow (disabling a key revokes it)', async () => {
    const lenient = parseConfig(configYaml(rsaKeyId, ecKeyId, 'allow'), { baseDir: dir });
    const { verifier: v } = verifier(lenient);
    kms.setKeyState(rsaKeyId, 'Disabled');
    try {
      const decision = await v.verify(image);
      expect(decision).toMatchObject({
        allowed: false,
        reason: { code: 'KEY_UNAVAILABLE', witness: 'kms-rsa', keyCode: 'KMS_DISABLED' },
      });
    } finally {
      kms.setKeyState(rsaKeyId, 'Enabled');
    }
  });
});
