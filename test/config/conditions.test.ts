/**
 * `registries[].kind` and `signingRules[].conditions`: defaults filled once, and every condition a
 * covered registry cannot feed refused at load with its path (a scan on a registry without a
 * scanner must not silently never sign).
 */
import { ConfigError } from '../../lib/core/errors';
import { checkConfig } from '../../lib/config/check';
import { parseConfig } from '../../lib/config/load';
import type { SignetConfig } from '../../lib/config/types';

const parse = (text: string): SignetConfig => parseConfig(text, { baseDir: '/srv/signet', env: {} });

function issuesOf(text: string): { path: string; message: string }[] {
  try {
    parse(text);
  } catch (err) {
    if (err instanceof ConfigError) return [...err.issues];
    throw err;
  }
  throw new Error('expected a ConfigError');
}

const ECR = '111122223333.dkr.ecr.us-east-1.amazonaws.com';

const config = (registries: string, conditions: string, ruleExtra = ''): string => `
registries:
${registries}
witnesses:
  - name: prod
    key: file://keys/prod.pem
  - name: dev
    publicKey: file://keys/dev.pub
  - name: qa
    publicKey: file://keys/qa.pub
signingRules:
  - name: promote
    namespaces: [prod]
    witness: prod
    algorithm: ECDSA_SHA_256${ruleExtra}
    conditions:
${conditions}
`;

describe('registries[].kind', () => {
  it('defaults to ecr for ECR hosts and distribution for every other host', () => {
    const parsed = parse(`
registries:
  - host: ${ECR}
  - host: harbor.example.com
  - host: harbor2.example.com
    kind: harbor
`);
    expect(parsed.registries.map((r) => r.kind)).toEqual(['ecr', 'distribution', 'harbor']);
  });

  it('refuses an unknown kind and a non-distribution embedded registry', () => {
    expect(
      issuesOf(`
registries:
  - host: r.example.com
    kind: quay
  - host: 127.0.0.1:5000
    embedded: true
    kind: harbor
`).map((i) => i.path),
    ).toEqual(['registries[0].kind', 'registries[1].kind']);
  });
});

describe('signingRules[].conditions', () => {
  it('fills the defaults once: scan waits an hour, ignoreUnfixed off, signedIdentity matchRepository', () => {
    const parsed = parse(
      config(
        '  - host: harbor.example.com\n    kind: harbor',
        '      pushedBy: [ci-*]\n      scan: { maxSeverity: HIGH }\n      signedBy: [dev, qa]',
      ),
    );
    expect(parsed.signingRules[0]?.conditions).toEqual({
      pushedBy: ['ci-*'],
      scan: { maxSeverity: 'HIGH', ignoreUnfixed: false, waitSeconds: 3600 },
      signedBy: ['dev', 'qa'],
      signedIdentity: { type: 'matchRepository' },
    });
  });

  it('reads signedIdentity as policies do', () => {
    const parsed = parse(
      config(
        '  - host: mirror.example.com',
        '      signedBy: [dev]\n      signedIdentity: { type: remapIdentity, prefix: mirror.example.com, signedPrefix: Upstream.Example.com }',
      ),
    );
    expect(parsed.signingRules[0]?.conditions?.signedIdentity).toEqual({
      type: 'remapIdentity',
      prefix: 'mirror.example.com',
      signedPrefix: 'upstream.example.com',
    });
  });

  it('leaves a rule without conditions (or with an empty mapping) without them', () => {
    const parsed = parse(config('  - host: r.example.com', '      {}'));
    expect(parsed.signingRules[0]?.conditions).toBeUndefined();
  });

  describe('conditions a covered registry cannot feed', () => {
    it.each([
      [
        'scan on a registry without a scanner (distribution)',
        '  - host: r.example.com',
        '      scan: { maxSeverity: HIGH }',
        '',
        /has no scanner: set its kind to harbor or ecr/,
      ],
      [
        'pushedBy on the embedded registry (no authentication: no actor)',
        '  - host: 127.0.0.1:5000\n    embedded: true\n    insecure: true',
        '      pushedBy: [ci]',
        '',
        /runs without authentication/,
      ],
      [
        'scan and pushedBy together on ECR (no event carries both)',
        `  - host: ${ECR}`,
        '      scan: { maxSeverity: HIGH }\n      pushedBy: [arn:aws:iam::111122223333:user/ci]',
        '',
        /one rule cannot require both there/,
      ],
    ])('refuses %s', (_, registries, conditions, extra, message) => {
      const issues = issuesOf(config(registries, conditions, extra));
      expect(issues).toEqual([
        {
          path: expect.stringMatching(/^signingRules\[0\]\.conditions\./),
          message: expect.stringMatching(message),
        },
      ]);
    });

    it('accepts them once the rule is limited to registries that can', () => {
      const parsed = parse(
        config(
          '  - host: r.example.com\n  - host: harbor.example.com\n    kind: harbor',
          '      scan: { maxSeverity: CRITICAL }',
          '\n    registries: [harbor.example.com]',
        ),
      );
      expect(parsed.signingRules[0]?.conditions?.scan?.maxSeverity).toBe('CRITICAL');
    });
  });

  it.each([
    ['an unknown condition', '      pushedby: [ci]', 'signingRules[0].conditions.pushedby'],
    ['an empty pushedBy', '      pushedBy: []', 'signingRules[0].conditions.pushedBy'],
    [
      'a pushedBy glob with brackets',
      '      pushedBy: ["ci-[0-9]"]',
      'signingRules[0].conditions.pushedBy[0]',
    ],
    [
      'a scan without maxSeverity',
      '      scan: { ignoreUnfixed: true }',
      'signingRules[0].conditions.scan.maxSeverity',
    ],
    [
      'an unknown severity',
      '      scan: { maxSeverity: SEVERE }',
      'signingRules[0].conditions.scan.maxSeverity',
    ],
    [
      'a zero wait',
      '      scan: { maxSeverity: LOW, waitSeconds: 0 }',
      'signingRules[0].conditions.scan.waitSeconds',
    ],
    ['an unknown signedBy witness', '      signedBy: [deev]', 'signingRules[0].conditions.signedBy[0]'],
    [
      "the rule's own witness in signedBy",
      '      signedBy: [prod]',
      'signingRules[0].conditions.signedBy[0]',
    ],
    [
      'signedIdentity without signedBy',
      '      signedIdentity: { type: matchDigest }',
      'signingRules[0].conditions.signedIdentity',
    ],
    [
      'a malformed signedIdentity',
      '      signedBy: [dev]\n      signedIdentity: { type: exactRepository }',
      'signingRules[0].conditions.signedIdentity.dockerRepository',
    ],
  ])('refuses %s, naming the field', (_, conditions, path) => {
    const registries = '  - host: harbor.example.com\n    kind: harbor';
    expect(issuesOf(config(registries, conditions)).map((i) => i.path)).toEqual([path]);
  });

  it('suggests the witness a typo meant', () => {
    const [issue] = issuesOf(config('  - host: r.example.com', '      signedBy: [deev]'));
    expect(issue?.message).toContain('did you mean "dev"');
  });
});

describe('config check advice on conditions', () => {
  const warnings = (registries: string, conditions: string): string[] =>
    checkConfig(parse(config(registries, conditions)), () => true).warnings;

  it('warns that matchDigest counts a signature made for any repository', () => {
    expect(
      warnings(
        '  - host: r.example.com',
        '      signedBy: [dev]\n      signedIdentity: { type: matchDigest }',
      ),
    ).toEqual([
      expect.stringMatching(/^signingRules\[0\] \(promote\): conditions.signedIdentity matchDigest/),
    ]);
  });

  it('warns that ECR scanners do not say which findings are fixable', () => {
    expect(warnings(`  - host: ${ECR}`, '      scan: { maxSeverity: HIGH, ignoreUnfixed: true }')).toEqual([
      expect.stringMatching(/ignoreUnfixed: .*ECR/),
    ]);
  });

  it('reminds that pushedBy on distribution needs registry authentication', () => {
    expect(warnings('  - host: r.example.com', '      pushedBy: [ci]')).toEqual([
      expect.stringMatching(/actor/),
    ]);
  });
});
