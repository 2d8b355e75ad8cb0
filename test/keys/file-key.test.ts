import { generateKeyPairSync, verify } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { ConfigError } from '../../lib/core/errors';
import { keyIdOf } from '../../lib/keys/algorithms';
import { FileWitnessKey } from '../../lib/keys/file-key';

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const data = Buffer.from('payload');

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'signet-file-key-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

async function keyFile(name: string, contents: string | Buffer): Promise<FileWitnessKey> {
  const file = path.join(dir, name);
  await writeFile(file, contents, { mode: 0o600 });
  return new FileWitnessKey('release', file);
}

describe('when the key file does not exist', () => {
  it('throws KEY_UNREADABLE naming the path, on first use and not before', async () => {
    const file = path.join(dir, 'missing.pem');
    const key = new FileWitnessKey('release', file);
    await expect(key.keyId()).toThrowWithCode(ConfigError, 'KEY_UNREADABLE');
    await expect(key.signer('ECDSA_SHA_256')).rejects.toThrow(file);
  });

  it('reads it once it has been created (the failure is not remembered)', async () => {
    const file = path.join(dir, 'later.pem');
    const key = new FileWitnessKey('release', file);
    await expect(key.publicKey()).toThrowWithCode(ConfigError, 'KEY_UNREADABLE');
    await writeFile(file, ec.privateKey.export({ type: 'pkcs8', format: 'pem' }));
    expect(await key.keyId()).toBe(keyIdOf(ec.publicKey));
  });

  it('calls a directory KEY_UNREADABLE too', async () => {
    await expect(new FileWitnessKey('release', dir).keyId()).toThrowWithCode(ConfigError, 'KEY_UNREADABLE');
  });
});

describe('when the file is not a usable private key', () => {
  const cases: [string, () => string][] = [
    [
      'an encrypted PKCS#8 key',
      () =>
        ec.privateKey
          .export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'secret' })
          .toString(),
    ],
    [
      'an encrypted traditional RSA key',
      () =>
        rsa.privateKey
          .export({ type: 'pkcs1', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'secret' })
          .toString(),
    ],
    [
      'a cosign-encrypted key',
      () =>
        '-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\neyJrZGYiOnt9fQ==\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n',
    ],
    ['a public key', () => ec.publicKey.export({ type: 'spki', format: 'pem' }).toString()],
    ['not PEM at all', () => 'just some text\n'],
    ['a damaged key', () => '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n'],
    [
      'an Ed25519 key',
      () => generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    ],
  ];

  it.each(cases)('throws KEY_INVALID for %s', async (name, contents) => {
    const key = await keyFile(`${name.replace(/\W+/g, '-')}.pem`, contents());
    await expect(key.keyId()).toThrowWithCode(ConfigError, 'KEY_INVALID');
    await expect(key.signer('ECDSA_SHA_256')).toThrowWithCode(ConfigError, 'KEY_INVALID');
  });

  it('says how to decrypt an encrypted key', async () => {
    const key = await keyFile(
      'encrypted-message.pem',
      ec.privateKey.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'x' }),
    );
    await expect(key.keyId()).rejects.toThrow(/encrypted.*openssl pkcs8 -topk8 -nocrypt/);
  });
});

describe('when the key is a traditional PEM, as openssl writes it', () => {
  it('reads BEGIN RSA PRIVATE KEY', async () => {
    const key = await keyFile('pkcs1.pem', rsa.privateKey.export({ type: 'pkcs1', format: 'pem' }));
    expect(await key.keyId()).toBe(keyIdOf(rsa.publicKey));
    const { signature } = await (await key.signer('RSASSA_PKCS1_V1_5_SHA_256')).sign(data);
    expect(verify('sha256', data, rsa.publicKey, signature)).toBe(true);
  });

  it('reads BEGIN EC PRIVATE KEY after an EC PARAMETERS block (openssl ecparam -genkey)', async () => {
    const parameters = '-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n';
    const key = await keyFile(
      'sec1.pem',
      parameters + ec.privateKey.export({ type: 'sec1', format: 'pem' }).toString(),
    );
    expect(await key.shape()).toEqual({ $case: 'ec', curve: 'P-256' });
    const { signature } = await (await key.signer('ECDSA_SHA_256')).sign(data);
    expect(verify('sha256', data, ec.publicKey, signature)).toBe(true);
  });
});

describe('a PKCS#8 key', () => {
  it('has a stable key id: sha256 of its SPKI, the same for every instance', async () => {
    const pem = ec.privateKey.export({ type: 'pkcs8', format: 'pem' });
    const a = await keyFile('a.pem', pem);
    const b = await keyFile('b.pem', pem);
    expect(await a.keyId()).toBe(keyIdOf(ec.publicKey));
    expect(await a.keyId()).toBe(await b.keyId());
    expect(await a.keyId()).toBe(await a.keyId());
  });

  it('can sign and exposes its public key', async () => {
    const key = await keyFile('rsa.pem', rsa.privateKey.export({ type: 'pkcs8', format: 'pem' }));
    expect(key.canSign).toBe(true);
    expect((await key.publicKey()).type).toBe('public');
    expect((await key.publicKey()).export({ type: 'spki', format: 'der' })).toEqual(
      rsa.publicKey.export({ type: 'spki', format: 'der' }),
    );
    expect(await key.shape()).toEqual({ $case: 'rsa', bits: 2048 });
  });
});
