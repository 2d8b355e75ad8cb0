/**
 * `transparencyLog` and `timestampAuthority` on witnesses: read onto signing witnesses only,
 * https (http only on loopback), nothing secret in the URL, every mistake under its path.
 */
import { checkConfig } from '../../lib/config/check';
import { parseConfig } from '../../lib/config/load';
import type { SignetConfig } from '../../lib/config/types';
import { ConfigError } from '../../lib/core/errors';

const parse = (text: string): SignetConfig => parseConfig(text, { baseDir: '/srv/signet', env: {} });

function issuesOf(text: string): { path: string; message: string }[] {
  try {
    parse(text);
  } catch (err) {
    if (err instanceof ConfigError) return err.issues.map(({ path, message }) => ({ path, message }));
    throw err;
  }
  throw new Error('expected a ConfigError');
}

const witness = (body: string): string => `witnesses:\n  - name: w\n${body}`;
const SIGNING = '    key: file://keys/w.pem\n';

describe('a signing witness with a transparency log and a timestamp authority', () => {
  it('reads both URLs (a trailing slash dropped)', () => {
    const [w] = parse(
      witness(
        `${SIGNING}    transparencyLog: { url: https://rekor.example.com/ }\n` +
          '    timestampAuthority: { url: https://tsa.example.com/api/v1/timestamp }\n',
      ),
    ).witnesses;
    expect(w?.transparencyLog).toEqual({ url: 'https://rekor.example.com' });
    expect(w?.timestampAuthority).toEqual({ url: 'https://tsa.example.com/api/v1/timestamp' });
  });

  it('has neither by default', () => {
    const [w] = parse(witness(SIGNING)).witnesses;
    expect(w?.transparencyLog).toBeUndefined();
    expect(w?.timestampAuthority).toBeUndefined();
  });

  it.each(['http://127.0.0.1:3000', 'http://localhost:3000', 'http://[::1]:3000'])(
    'takes http on loopback (%s)',
    (url) => {
      expect(
        parse(witness(`${SIGNING}    transparencyLog: { url: '${url}' }\n`)).witnesses[0]?.transparencyLog,
      ).toEqual({
        url,
      });
    },
  );
});

describe('when a witness service is misconfigured', () => {
  it.each<[string, string, string[]]>([
    [
      'plain http off loopback',
      'transparencyLog: { url: http://rekor.example.com }',
      ['witnesses[0].transparencyLog.url'],
    ],
    ['not a URL', 'timestampAuthority: { url: rekor }', ['witnesses[0].timestampAuthority.url']],
    [
      'another scheme',
      'transparencyLog: { url: "ftp://rekor.example.com" }',
      ['witnesses[0].transparencyLog.url'],
    ],
    [
      'credentials',
      'transparencyLog: { url: "https://u:p@rekor.example.com" }',
      ['witnesses[0].transparencyLog.url'],
    ],
    [
      'a query',
      'timestampAuthority: { url: "https://tsa.example.com/?token=x" }',
      ['witnesses[0].timestampAuthority.url'],
    ],
    ['no url', 'transparencyLog: {}', ['witnesses[0].transparencyLog.url']],
    [
      'an unknown field',
      'transparencyLog: { url: https://rekor.example.com, publicKey: x }',
      ['witnesses[0].transparencyLog.publicKey'],
    ],
    [
      'a string instead of {url}',
      'transparencyLog: https://rekor.example.com',
      ['witnesses[0].transparencyLog'],
    ],
  ])('names the field: %s', (_, line, paths) => {
    expect(issuesOf(witness(`${SIGNING}    ${line}\n`)).map((i) => i.path)).toEqual(paths);
  });

  it('refuses them on a verify-only witness', () => {
    const issues = issuesOf(
      witness(
        '    publicKey: file://keys/w.pub\n' +
          '    transparencyLog: { url: https://rekor.example.com }\n' +
          '    timestampAuthority: { url: https://tsa.example.com }\n',
      ),
    );
    expect(issues.map((i) => i.path)).toEqual([
      'witnesses[0].transparencyLog',
      'witnesses[0].timestampAuthority',
    ]);
    expect(issues[0]?.message).toMatch(/only goes with key/);
  });

  it('reports problems of both services at once', () => {
    expect(
      issuesOf(
        witness(
          `${SIGNING}    transparencyLog: { url: http://rekor.example.com }\n` +
            '    timestampAuthority: { url: nope }\n',
        ),
      ).map((i) => i.path),
    ).toEqual(['witnesses[0].transparencyLog.url', 'witnesses[0].timestampAuthority.url']);
  });
});

describe('config check advice for witness services', () => {
  const warnings = (text: string): string[] => checkConfig(parse(text), () => true).warnings;

  it('warns that the public log publishes what it logs', () => {
    expect(warnings(witness(`${SIGNING}    transparencyLog: { url: https://rekor.sigstore.dev }\n`))).toEqual(
      [expect.stringMatching(/^witnesses\[0\] \(w\)\.transparencyLog: is the public Sigstore log/)],
    );
    expect(warnings(witness(`${SIGNING}    transparencyLog: { url: https://rekor.example.com }\n`))).toEqual(
      [],
    );
  });

  it('warns that a logged witness cannot sign RSA-PSS rules', () => {
    const rules = (algorithm: string): string =>
      `signingRules:\n  - { name: r, namespaces: [a], witness: w, algorithm: ${algorithm} }\n`;
    const logged = `${witness(`${SIGNING}    transparencyLog: { url: https://rekor.example.com }\n`)}${rules('RSA_PSS_SHA_256')}`;
    expect(warnings(logged).filter((w) => w.includes('TLOG_REFUSED'))).toHaveLength(1);
    const unlogged = `${witness(SIGNING)}${rules('RSA_PSS_SHA_256')}`;
    expect(warnings(unlogged).filter((w) => w.includes('TLOG_REFUSED'))).toHaveLength(0);
  });
});
