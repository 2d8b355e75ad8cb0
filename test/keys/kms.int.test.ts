/**
 * KMS keys through the real AWS SDK client, over HTTP, against a local KMS that signs for real.
 * Every signature is checked with plain node:crypto and the public key the endpoint created.
 */
import { constants, createHash, verify, type KeyObject } from 'node:crypto';
import { KMSClient, SignCommand } from '@aws-sdk/client-kms';
import type { SigningAlgorithm } from '../../lib/config/types';
import { ConfigError, KeyError } from '../../lib/core/errors';
import { KeyRing } from '../../lib/keys/keyring';
import { KmsClients, KmsWitnessKey } from '../../lib/keys/kms-key';
import { LOCAL_AWS_ENV, setEnv } from '../support/aws-endpoint';
import {
  fastRetryStrategy,
  startKmsEndpoint,
  type KmsEndpoint,
  type KmsKeySpec,
} from '../support/kms-endpoint';
import { freePort } from '../support/ports';

let restoreEnv: (() => void) | undefined;

let kms: KmsEndpoint;
const pools: KmsClients[] = [];

beforeAll(async () => {
  restoreEnv = setEnv(LOCAL_AWS_ENV);
  kms = await startKmsEndpoint();
});

afterAll(async () => {
  for (const pool of pools) pool.destroy();
  await kms?.close();
  restoreEnv?.();
});

/** A client pool with the SDK's retry strategy, waiting 5 ms between attempts. */
function clients(maxAttempts = 5): KmsClients {
  const pool = new KmsClients({ clientConfig: { retryStrategy: fastRetryStrategy(maxAttempts) } });
  pools.push(pool);
  return pool;
}

function kmsKey(keyId: string, pool = clients(), endpoint = kms.url): KmsWitnessKey {
  return new KmsWitnessKey('release', { $case: 'kms', keyId, region: undefined, endpoint }, pool);
}

const data = Buffer.from('{"critical":{"image":{"docker-manifest-digest":"sha256:abc"}}}');

describe('signing with a KMS key', () => {
  const cases: [SigningAlgorithm, KmsKeySpec, (publicKey: KeyObject, signature: Buffer) => boolean][] = [
    [
      'RSASSA_PKCS1_V1_5_SHA_256',
      'RSA_2048',
      (key, sig) => verify('sha256', data, { key, padding: constants.RSA_PKCS1_PADDING }, sig),
    ],
    [
      'RSASSA_PSS_SHA_256',
      'RSA_2048',
      (key, sig) =>
        verify('sha256', data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }, sig),
    ],
    ['ECDSA_SHA_256', 'ECC_NIST_P256', (key, sig) => verify('sha256', data, key, sig)],
    ['ECDSA_SHA_384', 'ECC_NIST_P384', (key, sig) => verify('sha384', data, key, sig)],
  ];

  it.each(cases)('%s on %s verifies with node:crypto', async (algorithm, spec, check) => {
    const created = kms.createKey(spec);
    const key = kmsKey(created.keyId);
    const { signature, key: material } = await (await key.signer(algorithm)).sign(data);
    expect(check(created.publicKey, signature)).toBe(true);
    expect(await key.keyId()).toBe(created.arn);
    expect(material).toEqual({
      $case: 'publicKey',
      publicKey: created.publicKey.export({ type: 'spki', format: 'pem' }),
      hint: created.arn,
    });
    expect((await key.publicKey()).equals(created.publicKey)).toBe(true);
  });

  it('sends KMS the digest, not the payload', async () => {
    const created = kms.createKey('ECC_NIST_P256');
    const before = kms.calls.length;
    await (await kmsKey(created.keyId).signer('ECDSA_SHA_256')).sign(data);
    const sign = kms.calls.slice(before).find((c) => c.target === 'TrentService.Sign');
    expect(sign?.body).toEqual({
      KeyId: created.keyId,
      Message: createHash('sha256').update(data).digest('base64'),
      MessageType: 'DIGEST',
      SigningAlgorithm: 'ECDSA_SHA_256',
    });
  });

  it('describes the key and fetches its public key once, however many signatures', async () => {
    const created = kms.createKey('RSA_2048');
    const key = kmsKey(created.keyId);
    const [describe, getPublicKey, sign] = [
      kms.count('DescribeKey'),
      kms.count('GetPublicKey'),
      kms.count('Sign'),
    ];
    // As the signing pipeline does: signer, public key and key id at once.
    const [signer] = await Promise.all([
      key.signer('RSASSA_PKCS1_V1_5_SHA_256'),
      key.publicKey(),
      key.keyId(),
    ]);
    for (let i = 0; i < 3; i++) await signer.sign(data);
    await (await key.signer('RSASSA_PSS_SHA_256')).sign(data);
    expect(kms.count('DescribeKey') - describe).toBe(1);
    expect(kms.count('GetPublicKey') - getPublicKey).toBe(1);
    expect(kms.count('Sign') - sign).toBe(4);
  });

  it('shares one SDK client between the keys of one region and endpoint', async () => {
    const pool = clients();
    const a = kms.createKey('ECC_NIST_P256');
    const b = kms.createKey('ECC_NIST_P256');
    await (await kmsKey(a.keyId, pool).signer('ECDSA_SHA_256')).sign(data);
    await (await kmsKey(b.keyId, pool).signer('ECDSA_SHA_256')).sign(data);
    expect(pool.get(undefined, kms.url)).toBe(pool.get(undefined, kms.url));
  });
});

describe('when the configuration names an alias', () => {
  it.each([
    ['an alias name', (alias: string) => alias],
    ['an alias ARN', (alias: string) => `arn:aws:kms:us-east-1:111122223333:${alias}`],
  ])('resolves %s to the key, whose ARN is the key id', async (_name, spell) => {
    const alias = `alias/release-${Math.random().toString(36).slice(2)}`;
    const created = kms.createKey('ECC_NIST_P256', { alias });
    const key = kmsKey(spell(alias));
    expect(await key.keyId()).toBe(created.arn);
    const { signature, key: material } = await (await key.signer('ECDSA_SHA_256')).sign(data);
    expect(verify('sha256', data, created.publicKey, signature)).toBe(true);
    expect(material).toMatchObject({ hint: created.arn });
  });

  it('throws KMS_NOT_FOUND for an alias that names no key', async () => {
    await expect(kmsKey('alias/nobody').keyId()).toThrowWithCode(KeyError, 'KMS_NOT_FOUND');
  });
});

describe('when the key cannot be used', () => {
  it('throws KMS_DISABLED for a disabled key, and recovers once it is enabled', async () => {
    const created = kms.createKey('ECC_NIST_P256', { state: 'Disabled' });
    const key = kmsKey(created.keyId);
    await expect(key.signer('ECDSA_SHA_256')).toThrowWithCode(KeyError, 'KMS_DISABLED');
    await expect(key.publicKey()).toThrowWithCode(KeyError, 'KMS_DISABLED');
    kms.setKeyState(created.keyId, 'Enabled');
    await (await key.signer('ECDSA_SHA_256')).sign(data);
  });

  it('throws KMS_DISABLED when the key is disabled after the signer was made', async () => {
    const created = kms.createKey('ECC_NIST_P256');
    const signer = await kmsKey(created.keyId).signer('ECDSA_SHA_256');
    kms.setKeyState(created.arn, 'Disabled');
    await expect(signer.sign(data)).toThrowWithCode(KeyError, 'KMS_DISABLED');
  });

  it('throws KMS_INVALID_STATE for a key pending deletion', async () => {
    const created = kms.createKey('RSA_2048', { state: 'PendingDeletion' });
    await expect(kmsKey(created.keyId).signer('RSASSA_PSS_SHA_256')).toThrowWithCode(
      KeyError,
      'KMS_INVALID_STATE',
    );
  });

  it('throws KMS_NOT_FOUND for an unknown key', async () => {
    await expect(kmsKey('1234abcd-12ab-34cd-56ef-1234567890ab').signer('ECDSA_SHA_256')).toThrowWithCode(
      KeyError,
      'KMS_NOT_FOUND',
    );
  });

  it('throws KEY_INVALID for a key that does not sign (ENCRYPT_DECRYPT), naming it', async () => {
    const created = kms.createKey('RSA_2048', { keyUsage: 'ENCRYPT_DECRYPT' });
    const signer = kmsKey(created.keyId).signer('RSASSA_PSS_SHA_256');
    await expect(signer).toThrowWithCode(ConfigError, 'KEY_INVALID');
    await expect(kmsKey(created.keyId).signer('RSASSA_PSS_SHA_256')).rejects.toThrow(created.keyId);
  });

  it('throws KMS_ACCESS_DENIED when KMS refuses', async () => {
    const created = kms.createKey('ECC_NIST_P256');
    kms.failNext('DescribeKey', 1, 'AccessDeniedException');
    await expect(kmsKey(created.keyId).keyId()).toThrowWithCode(KeyError, 'KMS_ACCESS_DENIED');
  });

  it('throws KMS_UNAVAILABLE when KMS cannot be reached', async () => {
    const port = await freePort();
    await expect(
      kmsKey('alias/release', clients(2), `http://127.0.0.1:${port}`).signer('ECDSA_SHA_256'),
    ).toThrowWithCode(KeyError, 'KMS_UNAVAILABLE');
  });
});

describe('when the algorithm does not fit the KMS key', () => {
  it.each<[KmsKeySpec, SigningAlgorithm]>([
    ['ECC_NIST_P256', 'ECDSA_SHA_384'],
    ['ECC_NIST_P384', 'RSASSA_PKCS1_V1_5_SHA_256'],
    ['RSA_2048', 'ECDSA_SHA_256'],
  ])(
    'throws ALGORITHM_MISMATCH for a %s key and %s, naming the key, before any Sign',
    async (spec, algorithm) => {
      const created = kms.createKey(spec);
      const sign = kms.count('Sign');
      const signer = kmsKey(created.keyId).signer(algorithm);
      await expect(signer).toThrowWithCode(ConfigError, 'ALGORITHM_MISMATCH');
      await expect(signer).rejects.toThrow(created.keyId);
      expect(kms.count('Sign')).toBe(sign);
    },
  );
});

describe('when KMS throttles', () => {
  it('the SDK retries: two throttled Sign calls, then a signature', async () => {
    const created = kms.createKey('ECC_NIST_P256');
    const signer = await kmsKey(created.keyId, clients(5)).signer('ECDSA_SHA_256');
    const sign = kms.count('Sign');
    kms.failNext('Sign', 2);
    const { signature } = await signer.sign(data);
    expect(verify('sha256', data, created.publicKey, signature)).toBe(true);
    expect(kms.count('Sign') - sign).toBe(3);
  });

  it('throws KMS_THROTTLED once the attempts are used up, after exactly maxAttempts calls', async () => {
    const created = kms.createKey('ECC_NIST_P256');
    const signer = await kmsKey(created.keyId, clients(3)).signer('ECDSA_SHA_256');
    const sign = kms.count('Sign');
    kms.failNext('Sign', 3);
    const failure = signer.sign(data);
    await expect(failure).toThrowWithCode(KeyError, 'KMS_THROTTLED');
    expect(kms.count('Sign') - sign).toBe(3);
    await expect(failure).rejects.toMatchObject({ retryable: true });
  });

  it('signs through a steady rate of throttling', async () => {
    const created = kms.createKey('ECC_NIST_P384');
    const signer = await kmsKey(created.keyId, clients(12)).signer('ECDSA_SHA_384');
    kms.throttleRate('Sign', 0.3);
    try {
      const signatures = await Promise.all(Array.from({ length: 8 }, () => signer.sign(data)));
      for (const { signature } of signatures)
        expect(verify('sha384', data, created.publicKey, signature)).toBe(true);
    } finally {
      kms.throttleRate('Sign', 0);
    }
  });

  it('throws KMS_UNAVAILABLE when KMS keeps failing inside', async () => {
    const created = kms.createKey('ECC_NIST_P256');
    const signer = await kmsKey(created.keyId, clients(2)).signer('ECDSA_SHA_256');
    kms.failNext('Sign', 2, 'KMSInternalException');
    await expect(signer.sign(data)).toThrowWithCode(KeyError, 'KMS_UNAVAILABLE');
  });
});

describe('through a KeyRing', () => {
  it('builds KMS witnesses with the ring’s client options', async () => {
    const created = kms.createKey('RSA_3072', { alias: 'alias/ring' });
    const ring = new KeyRing(
      {
        baseDir: '/',
        witnesses: [
          {
            name: 'release',
            description: undefined,
            key: { $case: 'kms', keyId: 'alias/ring', region: 'us-east-1', endpoint: kms.url },
          },
        ],
      },
      { kms: { clientConfig: { retryStrategy: fastRetryStrategy(3) } } },
    );
    try {
      const key = ring.get('release');
      kms.failNext('Sign', 2);
      const { signature } = await (await key.signer('RSASSA_PKCS1_V1_5_SHA_256')).sign(data);
      expect(verify('sha256', data, created.publicKey, signature)).toBe(true);
      expect(await key.shape()).toEqual({ $case: 'rsa', bits: 3072 });
    } finally {
      ring.close();
    }
  });
});

describe('the local KMS endpoint', () => {
  const sdk = (): KMSClient => new KMSClient({ endpoint: kms.url, maxAttempts: 1 });

  it('refuses requests without a SigV4 signature, as AWS does', async () => {
    const response = await fetch(kms.url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'TrentService.DescribeKey' },
      body: '{}',
    });
    expect(response.status).toBe(400);
    expect(response.headers.get('x-amzn-errortype')).toBe('MissingAuthenticationTokenException');
    expect(await response.json()).toMatchObject({ __type: 'MissingAuthenticationTokenException' });
  });

  it('signs a RAW message by hashing it', async () => {
    const created = kms.createKey('RSA_2048');
    const client = sdk();
    try {
      const out = await client.send(
        new SignCommand({ KeyId: created.keyId, Message: data, SigningAlgorithm: 'RSASSA_PSS_SHA_384' }),
      );
      const signature = Buffer.from(out.Signature ?? []);
      const options = { key: created.publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 48 };
      expect(verify('sha384', data, options, signature)).toBe(true);
    } finally {
      client.destroy();
    }
  });

  it('validates Sign requests as KMS does', async () => {
    const created = kms.createKey('ECC_NIST_P256');
    const client = sdk();
    const digest = createHash('sha384').update(data).digest();
    try {
      await expect(
        client.send(
          new SignCommand({
            KeyId: created.keyId,
            Message: digest,
            MessageType: 'DIGEST',
            SigningAlgorithm: 'ECDSA_SHA_256',
          }),
        ),
      ).rejects.toMatchObject({ name: 'ValidationException' });
      await expect(
        client.send(
          new SignCommand({ KeyId: created.keyId, Message: data, SigningAlgorithm: 'RSASSA_PSS_SHA_256' }),
        ),
      ).rejects.toMatchObject({ name: 'InvalidKeyUsageException' });
    } finally {
      client.destroy();
    }
  });
});
