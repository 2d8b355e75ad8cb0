/**
 * Preflight of keyless and certificate witnesses (lib/keys/preflight.ts): their trusted roots and
 * certificate files are read at start, once (the KeyRing keeps them), and a file that is not what
 * it should be stops Signet with an issue naming the witness, instead of denying every image.
 */
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../../lib/config/load';
import type { SignetConfig } from '../../lib/config/types';
import { ConfigError } from '../../lib/core/errors';
import { silentLogger } from '../../lib/core/logger';
import { KeyRing } from '../../lib/keys/keyring';
import { inspectKeys, preflight } from '../../lib/keys/preflight';

const FIXTURES = join(__dirname, '../fixtures/sigstore');
const GITHUB = 'https://token.actions.githubusercontent.com';
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'signet-preflight-trust-'));
  await mkdir(join(dir, 'ca'));
  for (const name of ['root.pem', 'intermediate.pem', 'leaf.pem', 'trusted_root.json']) {
    await copyFile(join(FIXTURES, 'private-ca', name), join(dir, 'ca', name));
  }
  await copyFile(join(FIXTURES, 'conformance', 'trusted_root.private.json'), join(dir, 'private.json'));
  await writeFile(join(dir, 'broken.json'), JSON.stringify({ mediaType: 'application/json', tlogs: [{}] }));
  await writeFile(join(dir, 'not-json.json'), 'trusted root, honest');
});

afterAll(() => rm(dir, { recursive: true, force: true }));

function config(witnesses: string, policies = ''): SignetConfig {
  return parseConfig(`witnesses:\n${witnesses}${policies}`, {
    baseDir: dir,
    source: join(dir, 'signet.yaml'),
  });
}

const keyless = (name: string, trustedRoot?: string): string =>
  `  - name: ${name}\n    keyless:\n      issuer: ${GITHUB}\n      subject: repo:org/${name}\n` +
  (trustedRoot === undefined ? '' : `      trustedRoot: file://${trustedRoot}\n`);

const GOOD = `${keyless('ci')}${keyless('private-ci', 'private.json')}  - name: vendor
    roots: [file://ca/root.pem]
    certificateChain: file://ca/intermediate.pem
    trustedRoot: file://ca/trusted_root.json
  - name: pinned
    certificate: file://ca/leaf.pem
`;

describe('when the trusted roots and certificates load', () => {
  it('finds nothing wrong, and keeps what it loaded for verification', async () => {
    const c = config(GOOD);
    const keys = new KeyRing({ witnesses: c.witnesses, baseDir: dir });
    expect(await inspectKeys(c, keys)).toEqual({ issues: [], unchecked: [] });
    const loaded = await keys.trust('private-ci');
    expect(await keys.trust('private-ci')).toBe(loaded);
  });

  it('does not count keyless or root-only certificate witnesses as keys in an N-of-M set', async () => {
    const c = config(
      GOOD,
      '\npolicies:\n  - name: p\n    images: ["r.example/**"]\n    attestors: [{witnesses: [ci, private-ci, vendor], count: 2}]\n',
    );
    expect((await inspectKeys(c, new KeyRing({ witnesses: c.witnesses, baseDir: dir }))).issues).toEqual([]);
  });

  it('counts a pinned certificate as its key: the same key twice in a set is an issue', async () => {
    const { X509Certificate } = await import('node:crypto');
    const { readFileSync } = await import('node:fs');
    const pem = new X509Certificate(readFileSync(join(dir, 'ca', 'leaf.pem'))).publicKey
      .export({ type: 'spki', format: 'pem' })
      .toString();
    await writeFile(join(dir, 'leaf.pub'), pem);
    const c = config(
      `${GOOD}  - name: leaf-key\n    publicKey: file://leaf.pub\n`,
      '\npolicies:\n  - name: p\n    images: ["r.example/**"]\n    attestors: [{witnesses: [pinned, leaf-key], count: 2}]\n',
    );
    const { issues } = await inspectKeys(c, new KeyRing({ witnesses: c.witnesses, baseDir: dir }));
    expect(issues).toEqual([
      { path: 'policies[0].attestors[0].witnesses', message: expect.stringContaining('hold the same key') },
    ]);
  });
});

describe('when a trusted root or certificate does not load', () => {
  it.each<[string, string, string, RegExp]>([
    [
      'a trusted root that is not JSON',
      keyless('ci', 'not-json.json'),
      'witnesses[0].keyless',
      /is not JSON/,
    ],
    [
      'a trusted root with bad fields, each named',
      keyless('ci', 'broken.json'),
      'witnesses[0].keyless',
      /mediaType .*tlogs\[0\]\.publicKey\.rawBytes/,
    ],
    [
      'a trusted root that does not exist',
      keyless('ci', 'absent.json'),
      'witnesses[0].keyless',
      /no such file/,
    ],
    [
      'roots that are not certificates',
      '  - name: vendor\n    roots: [file://private.json]\n',
      'witnesses[0]',
      /roots/,
    ],
    [
      'a certificate that does not exist',
      '  - name: vendor\n    certificate: file://ca/absent.pem\n',
      'witnesses[0]',
      /no such file/,
    ],
  ])('reports %s under the witness', async (_case, witnesses, path, message) => {
    const c = config(witnesses);
    const { issues } = await inspectKeys(c, new KeyRing({ witnesses: c.witnesses, baseDir: dir }));
    expect(issues).toEqual([{ path, message: expect.stringMatching(message) }]);
    expect(issues[0]?.message).toMatch(/^witness "(ci|vendor)": /);
  });

  it('leaves files that do not exist yet unchecked for config check (missingFiles: skip)', async () => {
    const c = config(keyless('ci', 'absent.json'));
    expect(
      await inspectKeys(c, new KeyRing({ witnesses: c.witnesses, baseDir: dir }), { missingFiles: 'skip' }),
    ).toEqual({
      issues: [],
      unchecked: [{ witness: 'ci', reason: 'a file it names does not exist yet' }],
    });
  });

  it('makes preflight (signet serve) refuse to start with KEY_INVALID', async () => {
    const c = config(`${GOOD}${keyless('bad', 'broken.json')}`);
    const keys = new KeyRing({ witnesses: c.witnesses, baseDir: dir });
    await expect(preflight(c, keys, silentLogger)).toThrowWithCode(ConfigError, 'KEY_INVALID');
    const error = await preflight(c, keys, silentLogger).catch((e: unknown) => e);
    expect((error as ConfigError).issues.map((i) => i.path)).toEqual(['witnesses[4].keyless']);
  });
});
