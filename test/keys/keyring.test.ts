import { generateKeyPairSync } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { Witness } from '../../lib/config/types';
import { ConfigError } from '../../lib/core/errors';
import { keyIdOf } from '../../lib/keys/algorithms';
import { FileWitnessKey } from '../../lib/keys/file-key';
import { KeyRing, KeylessWitnessKey } from '../../lib/keys/keyring';
import { KmsWitnessKey } from '../../lib/keys/kms-key';
import { PublicWitnessKey } from '../../lib/keys/public-key';

const signing = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const partner = generateKeyPairSync('ec', { namedCurve: 'P-384' });
const partnerPem = partner.publicKey.export({ type: 'spki', format: 'pem' }).toString();

const witness = (name: string, key: Witness['key']): Witness => ({ name, key, description: undefined });

let dir: string;
let ring: KeyRing;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'signet-keyring-'));
  await mkdir(path.join(dir, 'keys'));
  await writeFile(
    path.join(dir, 'keys', 'release.pem'),
    signing.privateKey.export({ type: 'pkcs8', format: 'pem' }),
  );
  await writeFile(path.join(dir, 'keys', 'partner.pub'), partnerPem);
  ring = new KeyRing({
    baseDir: dir,
    witnesses: [
      witness('release', { $case: 'file', path: 'keys/release.pem' }),
      witness('absent', { $case: 'file', path: path.join(dir, 'keys', 'absent.pem') }),
      witness('kms', {
        $case: 'kms',
        keyId: 'alias/release',
        region: 'eu-west-1',
        endpoint: 'http://127.0.0.1:9',
      }),
      witness('partner-file', { $case: 'publicKeyFile', path: 'keys/partner.pub' }),
      witness('partner-inline', { $case: 'publicKeyPem', pem: partnerPem }),
      witness('partner-cert', {
        $case: 'certificate',
        certificatePath: 'keys/partner.pub',
        chainPath: undefined,
      }),
      witness('ci', {
        $case: 'keyless',
        issuer: 'https://token.actions.githubusercontent.com',
        subject: 'repo:acme/app',
      }),
    ],
  });
});
afterAll(async () => {
  ring.close();
  await rm(dir, { recursive: true, force: true });
});

describe('KeyRing', () => {
  it('builds the right kind of key for every witness', () => {
    expect(ring.get('release')).toBeInstanceOf(FileWitnessKey);
    expect(ring.get('kms')).toBeInstanceOf(KmsWitnessKey);
    expect(ring.get('partner-file')).toBeInstanceOf(PublicWitnessKey);
    expect(ring.get('partner-inline')).toBeInstanceOf(PublicWitnessKey);
    expect(ring.get('partner-cert')).toBeInstanceOf(PublicWitnessKey);
    expect(ring.get('ci')).toBeInstanceOf(KeylessWitnessKey);
    expect(ring.names()).toHaveLength(7);
  });

  it('builds each key once', () => {
    expect(ring.get('release')).toBe(ring.get('release'));
    expect(ring.get('kms')).toBe(ring.get('kms'));
  });

  it('resolves relative key paths against the base directory', async () => {
    expect(await ring.get('release').keyId()).toBe(keyIdOf(signing.publicKey));
    expect(await ring.get('partner-file').keyId()).toBe(keyIdOf(partner.publicKey));
    expect(await ring.get('partner-inline').keyId()).toBe(keyIdOf(partner.publicKey));
  });

  it('reads nothing until a key is used', async () => {
    const absent = ring.get('absent');
    expect(absent.witness).toBe('absent');
    await expect(absent.keyId()).toThrowWithCode(ConfigError, 'KEY_UNREADABLE');
  });

  it('throws WITNESS_UNKNOWN for a name the config lacks', () => {
    expect(() => ring.get('nobody')).toThrowWithCode(ConfigError, 'WITNESS_UNKNOWN');
    expect(() => ring.get('nobody')).toThrow(/"release"/);
  });

  it('says which keys can sign', () => {
    expect(ring.get('release').canSign).toBe(true);
    expect(ring.get('kms').canSign).toBe(true);
    expect(ring.get('partner-file').canSign).toBe(false);
    expect(ring.get('ci').canSign).toBe(false);
  });
});

describe('a keyless witness', () => {
  it('has no fixed key: KEY_INVALID for the key, the shape and a signer', async () => {
    const key = ring.get('ci');
    await expect(key.publicKey()).toThrowWithCode(ConfigError, 'KEY_INVALID');
    await expect(key.publicKey()).rejects.toThrow(/verified from their certificate/);
    await expect(key.shape()).toThrowWithCode(ConfigError, 'KEY_INVALID');
    await expect(key.signer('ECDSA_SHA_256')).toThrowWithCode(ConfigError, 'KEY_INVALID');
  });

  it('names its identity as key id', async () => {
    expect(await ring.get('ci').keyId()).toBe(
      'keyless:https://token.actions.githubusercontent.com#repo:acme/app',
    );
  });
});
