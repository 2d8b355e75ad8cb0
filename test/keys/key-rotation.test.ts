/**
 * A witness whose keys rotate, in the KeyRing and in preflight: it signs with the newest valid key
 * that can sign, and none valid is KEY_UNAVAILABLE; every key (with its window) verifies; its keys
 * are one signer in an attestor set, and every key it will sign with must fit its rules.
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../../lib/config/load';
import type { SignetConfig } from '../../lib/config/types';
import { KeyError } from '../../lib/core/errors';
import { keyIdOf } from '../../lib/keys/algorithms';
import { KeyRing, signingVersion, type KeyVersion } from '../../lib/keys/keyring';
import { inspectKeys } from '../../lib/keys/preflight';
import { nextKeyPath, renderKeysBlock } from '../../lib/keys/rotate';
import type { WitnessKey } from '../../lib/keys/types';

let dir: string;
const pairs: Record<string, { privateKey: KeyObject; publicKey: KeyObject }> = {
  old: generateKeyPairSync('ec', { namedCurve: 'P-256' }),
  new: generateKeyPairSync('ec', { namedCurve: 'P-256' }),
  other: generateKeyPairSync('ec', { namedCurve: 'P-256' }),
  rsa: generateKeyPairSync('rsa', { modulusLength: 2048 }),
};

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'signet-rotation-keys-'));
  await mkdir(join(dir, 'keys'));
  for (const [name, pair] of Object.entries(pairs)) {
    await writeFile(
      join(dir, 'keys', `${name}.pem`),
      pair.privateKey.export({ type: 'pkcs8', format: 'pem' }),
    );
    await writeFile(join(dir, 'keys', `${name}.pub`), pair.publicKey.export({ type: 'spki', format: 'pem' }));
  }
});
afterAll(() => rm(dir, { recursive: true, force: true }));

const config = (text: string): SignetConfig => parseConfig(text, { baseDir: dir });
const ring = (c: SignetConfig): KeyRing => new KeyRing({ witnesses: c.witnesses, baseDir: dir });
const idOf = (name: string): string => keyIdOf((pairs[name] as { publicKey: KeyObject }).publicKey);

const JUNE = Date.parse('2026-06-01T00:00:00Z');
const JULY = Date.parse('2026-06-30T00:00:00Z');
const RELEASE = `witnesses:
  - name: release
    keys:
      - { key: file://keys/new.pem, notBefore: 2026-06-01T00:00:00Z }
      - { key: file://keys/old.pem, notAfter: 2026-06-30T00:00:00Z }
      - { publicKey: file://keys/other.pub }
`;

describe('the key a rotating witness signs with', () => {
  let keys: KeyRing;
  beforeAll(() => {
    keys = ring(config(RELEASE));
  });

  it.each([
    ['before the new key starts', JUNE - 1, 'old'],
    ['when both are valid: the newest', JUNE + 1, 'new'],
    ['after the old key ends', JULY + 1, 'new'],
  ])('%s', async (_when, now, expected) => {
    expect(await keys.get('release', now).keyId()).toBe(idOf(expected));
  });

  it('is KEY_UNAVAILABLE when no signing key is valid', () => {
    const c = config(
      'witnesses:\n  - name: release\n    keys:\n      - { key: file://keys/old.pem, notAfter: 2026-06-30T00:00:00Z }\n      - { publicKey: file://keys/other.pub }\n',
    );
    expect(() => ring(c).get('release', JULY + 1)).toThrowWithCode(KeyError, 'KEY_UNAVAILABLE');
  });

  it('takes the first listed among keys with the same notBefore', () => {
    const key = (canSign: boolean, id: string): WitnessKey =>
      ({ canSign, witness: 'w', id }) as unknown as WitnessKey;
    const versions: KeyVersion[] = [
      { key: key(false, 'public'), notBefore: 10, notAfter: undefined },
      { key: key(true, 'first'), notBefore: 5, notAfter: undefined },
      { key: key(true, 'second'), notBefore: 5, notAfter: undefined },
      { key: key(true, 'older'), notBefore: undefined, notAfter: undefined },
    ];
    expect(signingVersion('w', versions, 20)).toBe(versions[1]?.key);
    expect(() => signingVersion('w', versions.slice(0, 1), 20)).toThrowWithCode(KeyError, 'KEY_UNAVAILABLE');
  });
});

describe('the keys a rotating witness verifies with', () => {
  it('lists every key with its window, public keys included', async () => {
    const keys = ring(config(RELEASE));
    const versions = keys.versions('release');
    expect(
      await Promise.all(versions.map(async (v) => [await v.key.keyId(), v.notBefore, v.notAfter])),
    ).toEqual([
      [idOf('new'), JUNE, undefined],
      [idOf('old'), undefined, JULY],
      [idOf('other'), undefined, undefined],
    ]);
    const trust = await keys.trust('release');
    expect(trust.$case === 'keys' && trust.keys.map((k) => k.keyId)).toEqual([
      idOf('new'),
      idOf('old'),
      idOf('other'),
    ]);
  });

  it('gives a single-key witness one version without a window', async () => {
    const keys = ring(config('witnesses:\n  - name: single\n    key: file://keys/old.pem\n'));
    expect(keys.versions('single')).toEqual([
      { key: keys.get('single'), notBefore: undefined, notAfter: undefined },
    ]);
  });
});

describe('preflight of a rotating witness', () => {
  const policies = (witnesses: string, count: number): string => `policies:
  - name: prod
    enabled: true
    images: ["registry.example.com/**"]
    attestors: [{ witnesses: [${witnesses}], count: ${count} }]
`;

  it('counts its keys as one signer: no issue for one witness', async () => {
    const c = config(`${RELEASE}${policies('release', 1)}`);
    expect((await inspectKeys(c, ring(c))).issues).toEqual([]);
  });

  it('refuses two witnesses of a set that share any key', async () => {
    const c = config(
      `${RELEASE}  - name: partner\n    publicKey: file://keys/other.pub\n${policies('release, partner', 2)}`,
    );
    expect((await inspectKeys(c, ring(c))).issues).toEqual([
      {
        path: 'policies[0].attestors[0].witnesses',
        message: `witnesses "release" and "partner" hold the same key (${idOf('other')}), so they cannot count as 2 distinct signers`,
      },
    ]);
  });

  it('checks a rule against every key the witness will sign with, not only today’s', async () => {
    const c = config(`registries:
  - host: registry.example.com
witnesses:
  - name: release
    keys:
      - { key: file://keys/rsa.pem, notBefore: 2099-01-01T00:00:00Z }
      - { key: file://keys/old.pem }
signingRules:
  - name: release
    namespaces: [team-a]
    witness: release
    algorithm: ECDSA_SHA_256
`);
    const { issues } = await inspectKeys(c, ring(c));
    expect(issues.map((i) => i.path)).toEqual(['signingRules[0].algorithm']);
    expect(issues[0]?.message).toContain('keys[0]');
  });
});

describe('what keys rotate writes', () => {
  it('puts the new key file next to the current one, dated, never over an existing file', () => {
    const taken = new Set(['/k/release-20261201.pem', '/k/release-20261201-2.pub']);
    const exists = (f: string): boolean => taken.has(f);
    const now = new Date('2026-12-01T06:00:00Z');
    expect(nextKeyPath('/k/release.pem', now, exists)).toBe('/k/release-20261201-3.pem');
    expect(nextKeyPath('/k/release-20250101.pem', new Date('2027-01-02T00:00:00Z'), exists)).toBe(
      '/k/release-20270102.pem',
    );
  });

  it('prints a keys: block the configuration reads back as it was', () => {
    const c = config(
      `${RELEASE}      - publicKey: ${JSON.stringify(pairs.old?.publicKey.export({ type: 'spki', format: 'pem' }))}\n`,
    );
    const rotation = c.witnesses[0]?.rotation;
    const block = renderKeysBlock(rotation?.keys ?? [], dir);
    expect(block).toContain('      - { key: file://keys/new.pem, notBefore: 2026-06-01T00:00:00Z }\n');
    const again = config(`witnesses:\n  - name: release\n${block}`);
    expect(again.witnesses[0]?.rotation).toEqual(rotation);
  });
});
