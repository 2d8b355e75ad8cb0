import { X509Certificate, generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { Witness } from '../../lib/config/types';
import { ConfigError } from '../../lib/core/errors';
import { keyIdOf } from '../../lib/keys/algorithms';
import { FileWitnessKey } from '../../lib/keys/file-key';
import { CertificateWitnessKey, KeyRing, KeylessWitnessKey } from '../../lib/keys/keyring';
import { KmsWitnessKey } from '../../lib/keys/kms-key';
import { PublicWitnessKey } from '../../lib/keys/public-key';
import { loadTrustedRoot } from '../../lib/sigstore/trusted-root';

const FIXTURES = path.join(__dirname, '../fixtures/sigstore');
const CA = path.join(FIXTURES, 'private-ca');

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
        certificatePath: path.join(CA, 'leaf.pem'),
        chainPath: undefined,
        rootPaths: [],
        trustedRootPath: undefined,
        requireSignedTime: false,
      }),
      witness('vendor-roots', {
        $case: 'certificate',
        certificatePath: undefined,
        chainPath: path.join(CA, 'intermediate.pem'),
        rootPaths: [path.join(CA, 'root.pem')],
        trustedRootPath: path.join(CA, 'trusted_root.json'),
        requireSignedTime: true,
      }),
      witness('vendor-bad-root', {
        $case: 'certificate',
        certificatePath: undefined,
        chainPath: undefined,
        rootPaths: ['keys/partner.pub'],
        trustedRootPath: undefined,
        requireSignedTime: false,
      }),
      witness('ci', {
        $case: 'keyless',
        issuer: 'https://token.actions.githubusercontent.com',
        subject: { $case: 'exact', subject: 'repo:acme/app' },
        trustedRootPath: undefined,
        github: undefined,
      }),
      witness('ci-private', {
        $case: 'keyless',
        issuer: 'https://token.actions.githubusercontent.com',
        subject: { $case: 'pattern', pattern: 'repo:acme/.+' },
        trustedRootPath: path.join(FIXTURES, 'conformance', 'trusted_root.private.json'),
        github: { repository: 'acme/app', ref: undefined, trigger: undefined },
      }),
      witness('ci-missing-root', {
        $case: 'keyless',
        issuer: 'https://token.actions.githubusercontent.com',
        subject: { $case: 'exact', subject: 'repo:acme/app' },
        trustedRootPath: 'keys/absent.json',
        github: undefined,
      }),
      witness('ci-bad-root', {
        $case: 'keyless',
        issuer: 'https://token.actions.githubusercontent.com',
        subject: { $case: 'exact', subject: 'repo:acme/app' },
        trustedRootPath: 'keys/partner.pub',
        github: undefined,
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
    expect(ring.get('partner-cert')).toBeInstanceOf(CertificateWitnessKey);
    expect(ring.get('ci')).toBeInstanceOf(KeylessWitnessKey);
    expect(ring.names()).toHaveLength(12);
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
    expect(ring.get('partner-cert').canSign).toBe(false);
    expect(ring.get('ci').canSign).toBe(false);
  });
});

describe('KeyRing.trust', () => {
  it('is the public key of a key witness', async () => {
    const trust = await ring.trust('partner-inline');
    expect(trust.$case).toBe('key');
    expect(trust.$case === 'key' && keyIdOf(trust.key)).toBe(keyIdOf(partner.publicKey));
  });

  it('is the identity and the public-good root of a keyless witness without trustedRoot', async () => {
    const trust = await ring.trust('ci');
    expect(trust).toMatchObject({
      $case: 'keyless',
      policy: {
        issuer: 'https://token.actions.githubusercontent.com',
        subject: { $case: 'exact', subject: 'repo:acme/app' },
      },
    });
    expect(trust.$case === 'keyless' && trust.root).toBe(loadTrustedRoot('public-good'));
  });

  it('reads a private trusted root, a compiled subject pattern and the GitHub claims', async () => {
    const trust = await ring.trust('ci-private');
    if (trust.$case !== 'keyless') throw new Error(`a ${trust.$case} trust`);
    expect(trust.root.source).toBe(path.join(FIXTURES, 'conformance', 'trusted_root.private.json'));
    expect(
      trust.policy.subject.$case === 'pattern' && trust.policy.subject.pattern.test('repo:acme/app'),
    ).toBe(true);
    expect(trust.policy.claims).toEqual({ repository: 'acme/app', ref: undefined, trigger: undefined });
  });

  it('loads a witness once: the same trust every time', async () => {
    expect(await ring.trust('vendor-roots')).toBe(await ring.trust('vendor-roots'));
  });

  it('reads the roots, the chain and the evidence root of a certificate witness', async () => {
    const trust = await ring.trust('vendor-roots');
    if (trust.$case !== 'certificate') throw new Error(`a ${trust.$case} trust`);
    expect(trust.trust).toMatchObject({ pinned: undefined, requireSignedTime: true });
    expect(trust.trust.anchors).toHaveLength(1);
    expect(trust.trust.intermediates).toHaveLength(1);
    expect(trust.trust.evidence?.source).toBe(path.join(CA, 'trusted_root.json'));
  });

  it('fails with KEY_UNREADABLE for a trusted root that does not exist', async () => {
    await expect(ring.trust('ci-missing-root')).toThrowWithCode(ConfigError, 'KEY_UNREADABLE');
  });

  it('fails with CONFIG_INVALID for a trusted root that is not one', async () => {
    await expect(ring.trust('ci-bad-root')).toThrowWithCode(ConfigError, 'CONFIG_INVALID');
  });

  it('fails with CONFIG_INVALID for roots that are not certificates', async () => {
    await expect(ring.trust('vendor-bad-root')).toThrowWithCode(ConfigError, 'CONFIG_INVALID');
  });

  it('fails with WITNESS_UNKNOWN for a name the config lacks', async () => {
    await expect(ring.trust('nobody')).toThrowWithCode(ConfigError, 'WITNESS_UNKNOWN');
  });
});

describe('a certificate witness', () => {
  it('pinning a certificate, has its key', async () => {
    const key = ring.get('partner-cert');
    const pem = readFileSync(path.join(CA, 'leaf.pem'), 'utf8');
    expect(await key.keyId()).toBe(keyIdOf(new X509Certificate(pem).publicKey));
    expect(await key.shape()).toEqual({ $case: 'ec', curve: 'P-256' });
  });

  it('with roots only, has no fixed key: KEY_INVALID for the key and a signer', async () => {
    const key = ring.get('vendor-roots');
    await expect(key.publicKey()).toThrowWithCode(ConfigError, 'KEY_INVALID');
    await expect(key.signer('ECDSA_SHA_256')).toThrowWithCode(ConfigError, 'KEY_INVALID');
    expect(await key.keyId()).toMatch(/^roots:sha256:[0-9a-f]{64}$/);
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
