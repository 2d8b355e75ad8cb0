import {
  constants,
  createHash,
  generateKeyPairSync,
  randomBytes,
  sign,
  verify,
  type KeyObject,
} from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { SigningAlgorithm } from '../../lib/config/types';
import { ConfigError } from '../../lib/core/errors';
import {
  ALGORITHMS,
  algorithmsFor,
  assertAlgorithmFits,
  keyIdOf,
  shapeOf,
  verifySignature,
} from '../../lib/keys/algorithms';
import { FileWitnessKey } from '../../lib/keys/file-key';

const pair = {
  rsa2048: generateKeyPairSync('rsa', { modulusLength: 2048 }),
  rsa1024: generateKeyPairSync('rsa', { modulusLength: 1024 }),
  p256: generateKeyPairSync('ec', { namedCurve: 'P-256' }),
  p384: generateKeyPairSync('ec', { namedCurve: 'P-384' }),
  p521: generateKeyPairSync('ec', { namedCurve: 'P-521' }),
};

const data = Buffer.from('{"critical":{"type":"cosign container image signature"}}');

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'signet-algorithms-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

async function fileKey(name: string, privateKey: KeyObject): Promise<FileWitnessKey> {
  const file = path.join(dir, `${name}.pem`);
  await writeFile(file, privateKey.export({ type: 'pkcs8', format: 'pem' }));
  return new FileWitnessKey(name, file);
}

describe('signing with a file key', () => {
  // Each verified with plain node:crypto, the way an independent verifier would.
  const cases: [SigningAlgorithm, KeyObject, (publicKey: KeyObject, signature: Buffer) => boolean][] = [
    [
      'RSASSA_PKCS1_V1_5_SHA_256',
      pair.rsa2048.privateKey,
      (key, sig) => verify('sha256', data, { key, padding: constants.RSA_PKCS1_PADDING }, sig),
    ],
    [
      'RSASSA_PSS_SHA_256',
      pair.rsa2048.privateKey,
      (key, sig) =>
        verify('sha256', data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }, sig),
    ],
    ['ECDSA_SHA_256', pair.p256.privateKey, (key, sig) => verify('sha256', data, key, sig)],
    ['ECDSA_SHA_384', pair.p384.privateKey, (key, sig) => verify('sha384', data, key, sig)],
  ];

  it.each(cases)('%s verifies with node:crypto', async (algorithm, privateKey, check) => {
    const key = await fileKey(algorithm, privateKey);
    const { signature, key: material } = await (await key.signer(algorithm)).sign(data);
    expect(check(await key.publicKey(), signature)).toBe(true);
    expect(verifySignature(await key.publicKey(), algorithm, data, signature)).toBe(true);
    expect(material).toEqual({
      $case: 'publicKey',
      publicKey: (await key.publicKey()).export({ type: 'spki', format: 'pem' }),
      hint: await key.keyId(),
    });
  });

  it('writes PSS with a salt as long as the hash (what KMS writes), not the maximum', async () => {
    const key = await fileKey('pss-salt', pair.rsa2048.privateKey);
    const { signature } = await (await key.signer('RSASSA_PSS_SHA_256')).sign(data);
    const publicKey = pair.rsa2048.publicKey;
    const withSalt = (saltLength: number) =>
      verify(
        'sha256',
        data,
        { key: publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength },
        signature,
      );
    expect(withSalt(32)).toBe(true);
    expect(withSalt(64)).toBe(false);
  });

  it('writes ECDSA signatures in ASN.1 DER, as cosign does', async () => {
    const key = await fileKey('ec-der', pair.p256.privateKey);
    const { signature } = await (await key.signer('ECDSA_SHA_256')).sign(data);
    expect(signature[0]).toBe(0x30);
    expect(verify('sha256', data, { key: pair.p256.publicKey, dsaEncoding: 'der' }, signature)).toBe(true);
  });
});

describe('when the algorithm does not fit the key', () => {
  it.each<[string, KeyObject, SigningAlgorithm]>([
    ['ECDSA_SHA_384 on P-256', pair.p256.publicKey, 'ECDSA_SHA_384'],
    ['ECDSA_SHA_256 on P-384', pair.p384.publicKey, 'ECDSA_SHA_256'],
    ['ECDSA_SHA_256 on P-521', pair.p521.publicKey, 'ECDSA_SHA_256'],
    ['an RSA algorithm on an EC key', pair.p256.publicKey, 'RSASSA_PKCS1_V1_5_SHA_256'],
    ['PSS on an EC key', pair.p384.publicKey, 'RSASSA_PSS_SHA_256'],
    ['ECDSA on an RSA key', pair.rsa2048.publicKey, 'ECDSA_SHA_256'],
    ['an RSA algorithm on RSA 1024', pair.rsa1024.publicKey, 'RSASSA_PKCS1_V1_5_SHA_256'],
  ])('throws ALGORITHM_MISMATCH for %s, naming the key', (_name, publicKey, algorithm) => {
    expect(() => assertAlgorithmFits(shapeOf(publicKey), algorithm, 'keys/release.pem')).toThrowWithCode(
      ConfigError,
      'ALGORITHM_MISMATCH',
    );
    expect(() => assertAlgorithmFits(shapeOf(publicKey), algorithm, 'keys/release.pem')).toThrow(
      /keys\/release\.pem/,
    );
  });

  it('refuses to make a signer from a file key', async () => {
    const key = await fileKey('mismatch', pair.p256.privateKey);
    await expect(key.signer('ECDSA_SHA_384')).toThrowWithCode(ConfigError, 'ALGORITHM_MISMATCH');
    await expect(key.signer('RSASSA_PSS_SHA_256')).toThrowWithCode(ConfigError, 'ALGORITHM_MISMATCH');
  });

  it('accepts the fitting ones', () => {
    expect(() => assertAlgorithmFits({ $case: 'rsa', bits: 4096 }, 'RSASSA_PSS_SHA_256', 'k')).not.toThrow();
    expect(() => assertAlgorithmFits({ $case: 'ec', curve: 'P-384' }, 'ECDSA_SHA_384', 'k')).not.toThrow();
  });
});

describe('verifySignature', () => {
  it('accepts PSS signatures with any salt length (other signers use the maximum)', () => {
    for (const saltLength of [32, constants.RSA_PSS_SALTLEN_MAX_SIGN, 0]) {
      const signature = sign('sha256', data, {
        key: pair.rsa2048.privateKey,
        padding: constants.RSA_PKCS1_PSS_PADDING,
        saltLength,
      });
      expect(verifySignature(pair.rsa2048.publicKey, 'RSASSA_PSS_SHA_256', data, signature)).toBe(true);
    }
  });

  it('accepts what cosign writes: PKCS1 v1.5 for RSA, DER ECDSA', () => {
    const rsa = sign('sha256', data, pair.rsa2048.privateKey);
    const ec = sign('sha256', data, pair.p256.privateKey);
    expect(verifySignature(pair.rsa2048.publicKey, 'RSASSA_PKCS1_V1_5_SHA_256', data, rsa)).toBe(true);
    expect(verifySignature(pair.p256.publicKey, 'ECDSA_SHA_256', data, ec)).toBe(true);
  });

  it('returns false, never throws, for garbage signatures', () => {
    const good = sign('sha256', data, pair.p256.privateKey);
    const garbage = [Buffer.alloc(0), randomBytes(71), Buffer.from([0x30, 0x02, 0x01]), good.subarray(0, 10)];
    for (const algorithm of Object.keys(ALGORITHMS) as SigningAlgorithm[]) {
      for (const key of [pair.rsa2048.publicKey, pair.p256.publicKey, pair.p384.publicKey]) {
        for (const signature of garbage) {
          expect(verifySignature(key, algorithm, data, signature)).toBe(false);
        }
      }
    }
    expect(verifySignature(pair.rsa2048.publicKey, 'RSASSA_PSS_SHA_256', data, randomBytes(256))).toBe(false);
  });

  it('returns false for a good signature over other data, by another key, or under another algorithm', () => {
    const good = sign('sha256', data, pair.p256.privateKey);
    expect(verifySignature(pair.p256.publicKey, 'ECDSA_SHA_256', Buffer.from('other'), good)).toBe(false);
    expect(
      verifySignature(
        generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey,
        'ECDSA_SHA_256',
        data,
        good,
      ),
    ).toBe(false);
    const pkcs1 = sign('sha256', data, pair.rsa2048.privateKey);
    expect(verifySignature(pair.rsa2048.publicKey, 'RSASSA_PSS_SHA_256', data, pkcs1)).toBe(false);
    expect(verifySignature(pair.p256.publicKey, 'RSASSA_PKCS1_V1_5_SHA_256', data, pkcs1)).toBe(false);
  });

  it('returns false for keys Signet does not use', () => {
    const ed = generateKeyPairSync('ed25519');
    expect(verifySignature(ed.publicKey, 'ECDSA_SHA_256', data, sign(null, data, ed.privateKey))).toBe(false);
  });
});

describe('algorithmsFor', () => {
  it('offers PKCS1 then PSS for RSA, the curve’s ECDSA for EC, nothing for other keys', () => {
    expect(algorithmsFor(shapeOf(pair.rsa2048.publicKey))).toEqual([
      'RSASSA_PKCS1_V1_5_SHA_256',
      'RSASSA_PSS_SHA_256',
    ]);
    expect(algorithmsFor(shapeOf(pair.p256.publicKey))).toEqual(['ECDSA_SHA_256']);
    expect(algorithmsFor(shapeOf(pair.p384.publicKey))).toEqual(['ECDSA_SHA_384']);
    expect(algorithmsFor(shapeOf(pair.p521.publicKey))).toEqual([]);
    expect(algorithmsFor(shapeOf(pair.rsa1024.publicKey))).toEqual([]);
  });
});

describe('shapeOf', () => {
  it('reads RSA modulus sizes and EC curves', () => {
    expect(shapeOf(pair.rsa2048.publicKey)).toEqual({ $case: 'rsa', bits: 2048 });
    expect(shapeOf(pair.p256.privateKey)).toEqual({ $case: 'ec', curve: 'P-256' });
    expect(shapeOf(pair.p384.publicKey)).toEqual({ $case: 'ec', curve: 'P-384' });
    expect(shapeOf(pair.p521.publicKey)).toEqual({ $case: 'ec', curve: 'P-521' });
  });

  it('rejects other key types with KEY_INVALID', () => {
    expect(() => shapeOf(generateKeyPairSync('ed25519').publicKey)).toThrowWithCode(
      ConfigError,
      'KEY_INVALID',
    );
  });
});

describe('keyIdOf', () => {
  it('is sha256 of the SPKI DER, the same from the private and the public key', () => {
    const der = pair.p256.publicKey.export({ type: 'spki', format: 'der' });
    const expected = `sha256:${createHash('sha256').update(der).digest('hex')}`;
    expect(keyIdOf(pair.p256.publicKey)).toBe(expected);
    expect(keyIdOf(pair.p256.privateKey)).toBe(expected);
  });
});
