/**
 * A witness whose keys rotate (`keys:`), as written in a configuration: every entry read with its
 * window, the key it signs with last as the witness's `key`, and every mistake reported at once
 * under its own path (`witnesses[0].keys[1].notAfter`).
 */
import { generateKeyPairSync } from 'node:crypto';
import { checkConfig } from '../../lib/config/check';
import { parseConfig } from '../../lib/config/load';
import type { SignetConfig } from '../../lib/config/types';
import { ConfigError } from '../../lib/core/errors';

const BASE = '/srv/signet';
const parse = (text: string): SignetConfig => parseConfig(text, { baseDir: BASE, env: {} });

function issuesOf(text: string): { path: string; message: string }[] {
  try {
    parse(text);
  } catch (err) {
    if (err instanceof ConfigError) return err.issues.map(({ path, message }) => ({ path, message }));
    throw err;
  }
  throw new Error('expected a ConfigError');
}

const PEM = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  .publicKey.export({ type: 'spki', format: 'pem' })
  .toString()
  .trim();
const witness = (keys: string, extra = ''): string =>
  `witnesses:\n  - name: release\n${extra}    keys:\n${keys}`;

describe('a witness with keys', () => {
  it('reads each key with its window, and names the newest signing key as its key', () => {
    const config = parse(
      witness(
        '      - { key: file://keys/release-2026.pem, notBefore: 2026-06-01T00:00:00Z }\n' +
          '      - { key: file://keys/release-2025.pem, notAfter: "2026-06-30T00:00:00+02:00" }\n' +
          `      - publicKey: |\n${PEM.split('\n')
            .map((l) => `          ${l}`)
            .join('\n')}\n        notAfter: 2025-01-01T00:00:00Z\n`,
      ),
    );
    const w = config.witnesses[0];
    expect(w?.key).toEqual({ $case: 'file', path: '/srv/signet/keys/release-2026.pem' });
    expect(w?.rotation).toEqual({
      keys: [
        {
          key: { $case: 'file', path: '/srv/signet/keys/release-2026.pem' },
          notBefore: Date.parse('2026-06-01T00:00:00Z'),
          notAfter: undefined,
        },
        {
          key: { $case: 'file', path: '/srv/signet/keys/release-2025.pem' },
          notBefore: undefined,
          notAfter: Date.parse('2026-06-29T22:00:00Z'),
        },
        {
          key: { $case: 'publicKeyPem', pem: `${PEM}\n` },
          notBefore: undefined,
          notAfter: Date.parse('2025-01-01T00:00:00Z'),
        },
      ],
      trustedRootPath: undefined,
    });
  });

  it('takes KMS keys and a trusted root for signing times', () => {
    const config = parse(
      witness(
        '      - { key: "awskms:///alias/release", notBefore: 2026-06-01T00:00:00Z }\n' +
          '      - { key: "awskms:///arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab" }\n',
        '    trustedRoot: file://rekor/trusted_root.json\n',
      ),
    );
    expect(config.witnesses[0]?.key).toMatchObject({ $case: 'kms', keyId: 'alias/release' });
    expect(config.witnesses[0]?.rotation?.trustedRootPath).toBe('/srv/signet/rekor/trusted_root.json');
  });

  it('is verify-only when it lists public keys only: its key is the first one', () => {
    const config = parse(witness('      - publicKey: file://a.pub\n      - publicKey: file://b.pub\n'));
    expect(config.witnesses[0]?.key).toEqual({ $case: 'publicKeyFile', path: '/srv/signet/a.pub' });
  });

  it('keeps the single-key forms as they were (no rotation)', () => {
    const config = parse('witnesses:\n  - name: release\n    key: file://keys/release.pem\n');
    expect(config.witnesses[0]).toEqual({
      name: 'release',
      key: { $case: 'file', path: '/srv/signet/keys/release.pem' },
      description: undefined,
    });
  });

  describe('when entries are wrong', () => {
    it('reports every bad field under its path', () => {
      const issues = issuesOf(
        witness(
          '      - { key: file://a.pem, publicKey: file://a.pub }\n' +
            '      - { key: file://b.pem, notAfter: 2026-06-30 }\n' +
            '      - { key: file://c.pem, notBefore: 2026-07-01T00:00:00Z, notAfter: 2026-06-01T00:00:00Z }\n' +
            '      - { key: ftp://d.pem, validFrom: 2026-07-01T00:00:00Z }\n' +
            '      - { publicKey: file://e.pub, notBefore: 1767225600 }\n',
        ),
      );
      expect(issues.map((i) => i.path)).toEqual([
        'witnesses[0].keys[0]',
        'witnesses[0].keys[1].notAfter',
        'witnesses[0].keys[2].notAfter',
        'witnesses[0].keys[3].validFrom',
        'witnesses[0].keys[3].key',
        'witnesses[0].keys[4].notBefore',
      ]);
    });

    it('refuses an empty list and the same key twice', () => {
      expect(issuesOf(witness('      []\n').replace('keys:\n      []', 'keys: []'))).toEqual([
        { path: 'witnesses[0].keys', message: 'must not be empty' },
      ]);
      expect(issuesOf(witness('      - key: file://a.pem\n      - key: file://./a.pem\n'))).toEqual([
        { path: 'witnesses[0].keys[1]', message: 'names the same key as witnesses[0].keys[0]' },
      ]);
    });

    it('refuses keys together with key or publicKey', () => {
      expect(issuesOf(witness('      - key: file://a.pem\n', '    key: file://b.pem\n'))).toEqual([
        {
          path: 'witnesses[0]',
          message:
            'give exactly one of key, publicKey, keys, certificate (or roots) or keyless, not key and keys',
        },
      ]);
    });

    it('refuses certificate fields other than trustedRoot', () => {
      expect(issuesOf(witness('      - key: file://a.pem\n', '    requireSignedTime: true\n'))).toEqual([
        { path: 'witnesses[0].requireSignedTime', message: 'only goes with certificate or roots' },
      ]);
    });
  });

  it('may sign through a transparency log when one of its keys signs', () => {
    const config = parse(
      witness('      - key: file://a.pem\n', '    transparencyLog: { url: https://rekor.example.com }\n'),
    );
    expect(config.witnesses[0]?.transparencyLog).toEqual({ url: 'https://rekor.example.com' });
    expect(
      issuesOf(
        witness(
          '      - publicKey: file://a.pub\n',
          '    transparencyLog: { url: https://rekor.example.com }\n',
        ),
      ),
    ).toEqual([
      {
        path: 'witnesses[0].transparencyLog',
        message: 'only goes with key: verify-only witnesses do not sign',
      },
    ]);
  });
});

describe('config check of a witness with keys', () => {
  it('warns about missing key files, expired keys and no key that can sign now', () => {
    const config = parse(
      witness(
        '      - { key: file://keys/new.pem, notBefore: 2099-01-01T00:00:00Z }\n' +
          '      - { key: file://keys/old.pem, notAfter: 2020-01-01T00:00:00Z }\n',
        '    trustedRoot: file://root.json\n',
      ),
    );
    const { warnings } = checkConfig(config, () => false);
    expect(warnings.filter((w) => w.includes('.keys') || w.includes('.trustedRoot'))).toEqual([
      expect.stringMatching(
        /^witnesses\[0\] \(release\)\.keys\[1\]: key file \/srv\/signet\/keys\/old\.pem does not exist/,
      ),
      expect.stringMatching(/^witnesses\[0\] \(release\)\.keys\[1\]: expired/),
      expect.stringMatching(/^witnesses\[0\] \(release\)\.keys: no key that can sign is valid now/),
      expect.stringMatching(/^witnesses\[0\] \(release\)\.trustedRoot: trusted root/),
    ]);
  });
});
