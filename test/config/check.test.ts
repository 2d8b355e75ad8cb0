import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { checkConfig } from '../../lib/config/check';
import { loadConfigFile, parseConfig } from '../../lib/config/load';

const EXAMPLE = path.resolve(__dirname, '../fixtures/config/mixed.yaml');

describe('checkConfig', () => {
  describe('with the example configuration', () => {
    let warnings: string[];
    beforeAll(async () => {
      warnings = checkConfig(await loadConfigFile(EXAMPLE, { env: {} }), () => false).warnings;
    });

    it('warns that the RSA-PSS rule is not verifiable by other verifiers, and suggests PKCS#1', () => {
      const pss = warnings.filter((w) => w.includes('RSA-PSS'));
      expect(pss).toHaveLength(1);
      expect(pss[0]).toMatch(/^signingRules\[2\] \(team-c-pss\): /);
      expect(pss[0]).toContain('cosign, Kyverno or the Sigstore policy-controller');
      expect(pss[0]).toContain('RSA_PKCS1_SHA_256');
    });

    it('warns about the disabled and the manual rule', () => {
      expect(warnings).toEqual(
        expect.arrayContaining([
          expect.stringMatching(/^signingRules\[3\] \(legacy\): is disabled/),
          expect.stringMatching(/^signingRules\[3\] \(legacy\): has a manual trigger/),
        ]),
      );
    });

    it('warns about the audit policy', () => {
      expect(warnings).toContainEqual(
        expect.stringMatching(/^policies\[1\] \(partner-images\): is in audit mode/),
      );
    });

    it('warns that local key files and the public key file do not exist yet', () => {
      expect(warnings.filter((w) => w.includes('does not exist yet'))).toHaveLength(2);
      expect(warnings).toContainEqual(
        expect.stringMatching(/^witnesses\[3\] \(partner\): public key file .*partner\.pub/),
      );
    });

    it('does not warn about the loopback insecure registry or noMatchingPolicy deny', () => {
      expect(warnings.some((w) => w.startsWith('registries') || w.startsWith('admission'))).toBe(false);
    });
  });

  describe('when files exist', () => {
    let dir: string;
    beforeAll(() => {
      dir = mkdtempSync(path.join(tmpdir(), 'signet-check-'));
      mkdirSync(path.join(dir, 'keys'));
      writeFileSync(path.join(dir, 'keys/release.pem'), '');
      writeFileSync(path.join(dir, 'keys/partner.pub'), '');
    });
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it('warns only about the missing ones', () => {
      const config = parseConfig(
        'witnesses:\n  - name: release\n    key: file://keys/release.pem\n  - name: ec\n    key: file://keys/ec.pem\n' +
          '  - name: partner\n    publicKey: file://keys/partner.pub\n',
        { baseDir: dir, env: {} },
      );
      expect(checkConfig(config).warnings).toEqual([
        expect.stringMatching(/^witnesses\[1\] \(ec\): key file .*ec\.pem does not exist yet/),
      ]);
    });
  });

  describe('with fail-open and exposed settings', () => {
    const config = parseConfig(
      `registries:
  - host: registry.example.com
    insecure: true
witnesses:
  - name: w
    key: awskms:///alias/w
policies:
  - name: off
    images: ["registry.example.com/**"]
    attestors: [{witnesses: [w]}]
  - name: lenient
    enabled: true
    failurePolicy: allow
    images: ["registry.example.com/**"]
    attestors: [{witnesses: [w]}]
  - name: anywhere
    enabled: true
    signedIdentity: {type: matchDigest}
    images: ["registry.example.com/**"]
    attestors: [{witnesses: [w]}]
admission:
  noMatchingPolicy: allow
server:
  host: 0.0.0.0
`,
      { baseDir: '/srv', env: {} },
    );

    it('warns about each', () => {
      expect(checkConfig(config).warnings).toEqual([
        expect.stringMatching(/^registries\[0\] \(registry\.example\.com\): insecure/),
        expect.stringMatching(/^policies\[0\] \(off\): is disabled/),
        expect.stringMatching(/^policies\[1\] \(lenient\): failurePolicy allow/),
        expect.stringMatching(/^policies\[2\] \(anywhere\): signedIdentity matchDigest/),
        expect.stringMatching(/^admission\.noMatchingPolicy: is allow/),
        expect.stringMatching(/^server: listens on 0\.0\.0\.0/),
      ]);
    });
  });
});
