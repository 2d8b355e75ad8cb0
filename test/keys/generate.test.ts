import { createPublicKey, verify } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { ConfigError } from '../../lib/core/errors';
import { keyIdOf } from '../../lib/keys/algorithms';
import { FileWitnessKey } from '../../lib/keys/file-key';
import { exportPublicKeyPem, generateKeyFile, publicKeyPathFor, type KeySpec } from '../../lib/keys/generate';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'signet-generate-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('generateKeyFile', () => {
  it.each<[KeySpec, object]>([
    ['rsa-2048', { $case: 'rsa', bits: 2048 }],
    ['rsa-3072', { $case: 'rsa', bits: 3072 }],
    ['rsa-4096', { $case: 'rsa', bits: 4096 }],
    ['ec-p256', { $case: 'ec', curve: 'P-256' }],
    ['ec-p384', { $case: 'ec', curve: 'P-384' }],
  ])(
    'writes a %s key that reloads with the same key id',
    async (spec, shape) => {
      const file = path.join(dir, spec, 'witness.pem');
      const keyId = await generateKeyFile(file, spec);
      const text = await readFile(file, 'utf8');
      expect(text).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
      const key = new FileWitnessKey('w', file);
      expect(await key.keyId()).toBe(keyId);
      expect(await key.shape()).toEqual(shape);
      const publicPem = await readFile(path.join(dir, spec, 'witness.pub'), 'utf8');
      expect(publicPem).toMatch(/^-----BEGIN PUBLIC KEY-----\n/);
      expect(keyIdOf(createPublicKey(publicPem))).toBe(keyId);
      expect(await exportPublicKeyPem(key)).toBe(publicPem);
    },
    30_000,
  );

  it('makes the private key readable by its owner only (0600), in new parent directories', async () => {
    const file = path.join(dir, 'deep', 'er', 'key.pem');
    await generateKeyFile(file, 'ec-p256');
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect((await stat(publicKeyPathFor(file))).mode & 0o777).toBe(0o644);
  });

  it('refuses to overwrite an existing key and leaves it untouched', async () => {
    const file = path.join(dir, 'keep.pem');
    const first = await generateKeyFile(file, 'ec-p256');
    const before = await readFile(file);
    await expect(generateKeyFile(file, 'ec-p256')).toThrowWithCode(ConfigError, 'KEY_INVALID');
    expect(await readFile(file)).toEqual(before);
    expect(await new FileWitnessKey('w', file).keyId()).toBe(first);
  });

  it('refuses when only the public key file exists', async () => {
    const file = path.join(dir, 'orphan.pem');
    await writeFile(publicKeyPathFor(file), 'someone else’s');
    await expect(generateKeyFile(file, 'ec-p256')).toThrowWithCode(ConfigError, 'KEY_INVALID');
    await expect(stat(file)).rejects.toThrow();
  });

  it('replaces the key when asked to', async () => {
    const file = path.join(dir, 'replace.pem');
    const first = await generateKeyFile(file, 'ec-p256');
    const second = await generateKeyFile(file, 'ec-p384', { overwrite: true });
    expect(second).not.toBe(first);
    expect(await new FileWitnessKey('w', file).keyId()).toBe(second);
    expect(keyIdOf(createPublicKey(await readFile(publicKeyPathFor(file), 'utf8')))).toBe(second);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
  });

  it('leaves no temporary files behind', async () => {
    const sub = path.join(dir, 'clean');
    await generateKeyFile(path.join(sub, 'k.pem'), 'ec-p256');
    await expect(generateKeyFile(path.join(sub, 'k.pem'), 'ec-p256')).rejects.toThrow();
    expect((await readdir(sub)).sort()).toEqual(['k.pem', 'k.pub']);
  });

  it('writes a key that signs', async () => {
    const file = path.join(dir, 'signs.pem');
    await generateKeyFile(file, 'rsa-2048');
    const key = new FileWitnessKey('w', file);
    const data = Buffer.from('hello');
    const { signature } = await (await key.signer('RSASSA_PKCS1_V1_5_SHA_256')).sign(data);
    expect(verify('sha256', data, await key.publicKey(), signature)).toBe(true);
  });
});

describe('publicKeyPathFor', () => {
  it('swaps .pem for .pub, or appends .pub', () => {
    expect(publicKeyPathFor('/k/release.pem')).toBe('/k/release.pub');
    expect(publicKeyPathFor('/k/cosign.key')).toBe('/k/cosign.key.pub');
  });
});
