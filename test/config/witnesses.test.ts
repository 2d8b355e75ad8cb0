/**
 * Keyless and certificate witnesses as written in a configuration: every field read into the
 * fully-specified `KeyReference`, every mistake reported at once under its path, and the advice
 * `config check` adds. Files are only named here; reading them is the KeyRing's job at start.
 */
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
const pathsOf = (text: string): string[] => issuesOf(text).map((i) => i.path);

const GITHUB = 'https://token.actions.githubusercontent.com';
const SUBJECT = 'https://github.com/org/repo/.github/workflows/release.yml@refs/tags/v1';

const witness = (body: string): string => `witnesses:\n  - name: w\n${body}`;
const keyOf = (body: string) => parse(witness(body)).witnesses[0]?.key;

describe('a keyless witness', () => {
  it('reads issuer and exact subject, with the public-good root and no claims by default', () => {
    expect(keyOf(`    keyless:\n      issuer: ${GITHUB}\n      subject: ${SUBJECT}\n`)).toEqual({
      $case: 'keyless',
      issuer: GITHUB,
      subject: { $case: 'exact', subject: SUBJECT },
      trustedRootPath: undefined,
      github: undefined,
    });
  });

  it('reads a subject pattern, a private trusted root (relative to the config) and GitHub claims', () => {
    expect(
      keyOf(
        `    keyless:\n      issuer: ${GITHUB}\n` +
          `      subjectRegExp: 'https://github\\.com/org/[^/]+/\\.github/workflows/release\\.yml@refs/tags/v.+'\n` +
          '      trustedRoot: file://sigstore/trusted_root.json\n' +
          '      github: {repository: org/repo, ref: refs/heads/main, trigger: push}\n',
      ),
    ).toEqual({
      $case: 'keyless',
      issuer: GITHUB,
      subject: {
        $case: 'pattern',
        pattern: 'https://github\\.com/org/[^/]+/\\.github/workflows/release\\.yml@refs/tags/v.+',
      },
      trustedRootPath: '/srv/signet/sigstore/trusted_root.json',
      github: { repository: 'org/repo', ref: 'refs/heads/main', trigger: 'push' },
    });
  });

  it('takes some GitHub claims only', () => {
    expect(
      keyOf(
        `    keyless:\n      issuer: ${GITHUB}\n      subject: ${SUBJECT}\n      github: {ref: refs/heads/main}\n`,
      ),
    ).toMatchObject({ github: { repository: undefined, ref: 'refs/heads/main', trigger: undefined } });
  });

  it.each<[string, string, string[]]>([
    ['no subject at all', `      issuer: ${GITHUB}\n`, ['witnesses[0].keyless']],
    [
      'both subject and subjectRegExp',
      `      issuer: ${GITHUB}\n      subject: a\n      subjectRegExp: a.*\n`,
      ['witnesses[0].keyless'],
    ],
    ['no issuer', `      subject: ${SUBJECT}\n`, ['witnesses[0].keyless.issuer']],
    [
      'an issuer that is not a URL',
      `      issuer: github\n      subject: a\n`,
      ['witnesses[0].keyless.issuer'],
    ],
    [
      'a pattern RE2 does not accept (a backreference)',
      `      issuer: ${GITHUB}\n      subjectRegExp: '(a)\\1'\n`,
      ['witnesses[0].keyless.subjectRegExp'],
    ],
    [
      'a pattern that does not parse',
      `      issuer: ${GITHUB}\n      subjectRegExp: '(unclosed'\n`,
      ['witnesses[0].keyless.subjectRegExp'],
    ],
    [
      'a trusted root that is not a file:// URI',
      `      issuer: ${GITHUB}\n      subject: a\n      trustedRoot: https://tuf-repo-cdn.sigstore.dev/trusted_root.json\n`,
      ['witnesses[0].keyless.trustedRoot'],
    ],
    [
      'empty GitHub claims',
      `      issuer: ${GITHUB}\n      subject: a\n      github: {}\n`,
      ['witnesses[0].keyless.github'],
    ],
    [
      'an unknown GitHub claim',
      `      issuer: ${GITHUB}\n      subject: a\n      github: {workflow: release.yml}\n`,
      ['witnesses[0].keyless.github.workflow', 'witnesses[0].keyless.github'],
    ],
    [
      'a misspelt key',
      `      issuer: ${GITHUB}\n      subject: a\n      trustedroot: file://x.json\n`,
      ['witnesses[0].keyless.trustedroot'],
    ],
  ])('reports %s', (_case, body, paths) => {
    expect(pathsOf(witness(`    keyless:\n${body}`))).toEqual(paths);
  });

  it('reports every problem of several witnesses at once', () => {
    expect(
      pathsOf(
        witness(`    keyless:\n      issuer: nope\n      subjectRegExp: '(a'\n      github: {ref: 1}\n`) +
          '  - name: v\n    roots: []\n    requireSignedTime: maybe\n',
      ),
    ).toEqual([
      'witnesses[0].keyless.issuer',
      'witnesses[0].keyless.subjectRegExp',
      'witnesses[0].keyless.github.ref',
      'witnesses[1].roots',
      'witnesses[1].requireSignedTime',
    ]);
  });

  it('says which pattern feature is missing', () => {
    expect(
      issuesOf(witness(`    keyless:\n      issuer: ${GITHUB}\n      subjectRegExp: '(?=a)'\n`)),
    ).toEqual([{ path: 'witnesses[0].keyless.subjectRegExp', message: expect.stringMatching(/look/i) }]);
  });
});

describe('a certificate witness', () => {
  it('reads a pinned certificate alone (it is its own trust anchor)', () => {
    expect(keyOf('    certificate: file://vendor.pem\n')).toEqual({
      $case: 'certificate',
      certificatePath: '/srv/signet/vendor.pem',
      chainPath: undefined,
      rootPaths: [],
      trustedRootPath: undefined,
      requireSignedTime: false,
    });
  });

  it('reads roots without a pinned certificate, and every other field', () => {
    expect(
      keyOf(
        '    roots: [file://ca/root.pem, file:///etc/ca/other.pem]\n    certificateChain: file://ca/chain.pem\n' +
          '    trustedRoot: file://tsa/trusted_root.json\n    requireSignedTime: true\n',
      ),
    ).toEqual({
      $case: 'certificate',
      certificatePath: undefined,
      chainPath: '/srv/signet/ca/chain.pem',
      rootPaths: ['/srv/signet/ca/root.pem', '/etc/ca/other.pem'],
      trustedRootPath: '/srv/signet/tsa/trusted_root.json',
      requireSignedTime: true,
    });
  });

  it('reads a pinned certificate that must also chain to roots', () => {
    expect(keyOf('    certificate: file://leaf.pem\n    roots: [file://root.pem]\n')).toMatchObject({
      certificatePath: '/srv/signet/leaf.pem',
      rootPaths: ['/srv/signet/root.pem'],
    });
  });

  it.each<[string, string, string[]]>([
    [
      'a chain without certificate or roots',
      '    key: file://k.pem\n    certificateChain: file://c.pem\n',
      ['witnesses[0].certificateChain'],
    ],
    [
      'a trusted root with a public key',
      '    publicKey: file://k.pub\n    trustedRoot: file://t.json\n',
      ['witnesses[0].trustedRoot'],
    ],
    [
      'requireSignedTime with a keyless witness',
      `    keyless: {issuer: ${GITHUB}, subject: a}\n    requireSignedTime: true\n`,
      ['witnesses[0].requireSignedTime'],
    ],
    ['an empty list of roots', '    roots: []\n', ['witnesses[0].roots']],
    ['roots that are not a list', '    roots: file://root.pem\n', ['witnesses[0].roots']],
    ['a root that is not a file:// URI', '    roots: [root.pem]\n', ['witnesses[0].roots[0]']],
    [
      'a trusted root that is not a file:// URI',
      '    roots: [file://r.pem]\n    trustedRoot: t.json\n',
      ['witnesses[0].trustedRoot'],
    ],
    ['roots next to a key', '    key: file://k.pem\n    roots: [file://r.pem]\n', ['witnesses[0]']],
  ])('reports %s', (_case, body, paths) => {
    expect(pathsOf(witness(body))).toEqual(paths);
  });
});

describe('config check advice for keyless and certificate witnesses', () => {
  const warningsOf = (body: string, exists: (file: string) => boolean = () => true): string[] =>
    checkConfig(parse(witness(body)), exists).warnings;

  it('warns about GitHub claims with another issuer than GitHub Actions', () => {
    expect(
      warningsOf(
        '    keyless:\n      issuer: https://gitlab.com\n      subject: a\n      github: {ref: refs/heads/main}\n',
      ),
    ).toEqual([
      expect.stringMatching(
        /^witnesses\[0\] \(w\): keyless\.github: .*token\.actions\.githubusercontent\.com/,
      ),
    ]);
    expect(
      warningsOf(
        `    keyless:\n      issuer: ${GITHUB}\n      subject: a\n      github: {ref: refs/heads/main}\n`,
      ),
    ).toEqual([]);
  });

  it('warns about trusted roots, roots and certificates that do not exist', () => {
    expect(
      warningsOf(
        `    keyless:\n      issuer: ${GITHUB}\n      subject: a\n      trustedRoot: file://t.json\n`,
        () => false,
      ),
    ).toEqual([expect.stringContaining('trusted root /srv/signet/t.json does not exist')]);
    expect(
      warningsOf(
        '    certificate: file://leaf.pem\n    roots: [file://root.pem]\n    trustedRoot: file://t.json\n',
        (file) => file.endsWith('leaf.pem'),
      ),
    ).toEqual([
      expect.stringContaining('certificate file /srv/signet/root.pem does not exist'),
      expect.stringContaining('trusted root /srv/signet/t.json does not exist'),
    ]);
  });
});
