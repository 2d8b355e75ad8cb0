import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { ConfigError } from '../../lib/core/errors';
import { checkConfig } from '../../lib/config/check';
import { loadConfigFile, parseConfig } from '../../lib/config/load';
import { ALGORITHM_ALIASES, type SignetConfig } from '../../lib/config/types';

const EXAMPLE = path.resolve(__dirname, '../../examples/signet.yaml');
const BASE = '/srv/signet';

const parse = (text: string, env: NodeJS.ProcessEnv = {}): SignetConfig =>
  parseConfig(text, { baseDir: BASE, env });

/** The ConfigError a parse throws (fails the test when it does not throw one). */
function errorOf(text: string, env: NodeJS.ProcessEnv = {}): ConfigError {
  try {
    parse(text, env);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

const pathsOf = (text: string, env: NodeJS.ProcessEnv = {}): string[] =>
  errorOf(text, env).issues.map((i) => i.path);

/** A valid config with one file witness and one verify-only witness, plus whatever `extra` adds. */
const WITNESSES = `
witnesses:
  - name: release
    key: file://keys/release.pem
  - name: partner
    publicKey: file://keys/partner.pub
`;

const rule = (fields: string): string => `${WITNESSES}
signingRules:
  - name: r
    namespaces: [team-a]
${fields}`;

const policy = (fields: string): string => `${WITNESSES}
policies:
  - name: p
${fields}`;

describe('loadConfigFile', () => {
  describe('when given the example configuration', () => {
    it('loads it into the fully-specified config', async () => {
      const config = await loadConfigFile(EXAMPLE, { env: {} });
      const dir = path.dirname(EXAMPLE);
      const ruleDefaults = {
        namespaces: [],
        repositories: [],
        registries: [],
        signatureType: 'default',
        trigger: 'automatic',
        enabled: true,
        recursive: false,
        bundle: false,
        annotations: {},
      };
      expect(config).toEqual({
        source: EXAMPLE,
        baseDir: dir,
        registries: [
          {
            host: '127.0.0.1:5000',
            kind: 'distribution',
            embedded: true,
            insecure: true,
            auth: { $case: 'anonymous' },
            dataDir: path.join(dir, '.signet/registry/127.0.0.1_5000'),
          },
        ],
        witnesses: [
          {
            name: 'release',
            key: { $case: 'file', path: path.join(dir, 'keys/release.pem') },
            description: undefined,
          },
          {
            name: 'release-ec',
            key: { $case: 'file', path: path.join(dir, 'keys/release-ec.pem') },
            description: undefined,
          },
        ],
        signingRules: [
          {
            ...ruleDefaults,
            name: 'team-a',
            namespaces: ['team-a'],
            witness: 'release',
            algorithm: 'RSASSA_PKCS1_V1_5_SHA_256',
          },
          {
            ...ruleDefaults,
            name: 'team-b',
            repositories: ['team-b/*'],
            witness: 'release-ec',
            algorithm: 'ECDSA_SHA_256',
            signatureType: 'simple',
          },
        ],
        policies: [
          {
            name: 'production',
            enabled: true,
            clusters: ['*'],
            namespaces: ['production'],
            images: ['127.0.0.1:5000/team-a/**', '127.0.0.1:5000/team-b/**'],
            attestors: [{ witnesses: ['release', 'release-ec'], count: 1 }],
            mode: 'enforce',
            mutateDigest: true,
            failurePolicy: 'deny',
            signedIdentity: { type: 'matchRepository' },
          },
        ],
        admission: {
          noMatchingPolicy: 'deny',
          cacheTtlSeconds: 300,
          cacheMaxEntries: 10000,
          excludeNamespaces: [],
          deadlineMs: 9000,
          maxSignatures: 64,
          maxReviewBytes: 8 * 1024 * 1024,
        },
        ledger: { retentionDays: 90 },
        reverify: undefined,
        revocations: [],
        server: {
          port: 8080,
          host: '127.0.0.1',
          maxBodyBytes: 3 * 1024 * 1024,
          bearerToken: undefined,
          secretPath: undefined,
          eventsToken: undefined,
          maxInFlight: 256,
          tls: undefined,
          shutdownGraceMs: 20000,
        },
        journal: {
          path: path.join(dir, '.signet', 'journal.db'),
          maxAttempts: 8,
          retryBaseMs: 1000,
          retryMaxMs: 300000,
          concurrency: 8,
        },
      });
    });

    it('has nothing to warn about: the embedded default starts clean', async () => {
      const config = await loadConfigFile(EXAMPLE, { env: {} });
      expect(checkConfig(config, () => true).warnings).toEqual([]);
    });
  });

  describe('when the file cannot be read', () => {
    let dir: string;
    beforeAll(() => {
      dir = mkdtempSync(path.join(tmpdir(), 'signet-config-'));
    });
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it('rejects a missing file with CONFIG_UNREADABLE naming it', async () => {
      const missing = path.join(dir, 'nope.yaml');
      await expect(loadConfigFile(missing)).toThrowWithCode(ConfigError, 'CONFIG_UNREADABLE');
      await expect(loadConfigFile(missing)).rejects.toThrow(missing);
    });

    it('rejects a directory with CONFIG_UNREADABLE', async () => {
      await expect(loadConfigFile(dir)).toThrowWithCode(ConfigError, 'CONFIG_UNREADABLE');
    });
  });
});

describe('parseConfig', () => {
  describe('when the configuration has many mistakes', () => {
    const text = `
registries:
  - host: https://registry.example.com
  - host: 127.0.0.1:5000
    embeded: true
witnesses:
  - name: release
    key: file://keys/release.pem
  - name: kms
    key: awskms:///not-a-key
  - name: release
    publicKey: file://keys/other.pub
signingRules:
  - name: r1
    namespaces: [team-a]
    witness: release
    algorithm: RSA_SHA_256
  - name: r2
    witness: release
    algorithm: ECDSA_SHA_256
    enabled: "yes"
policies:
  - name: p
    images: ["**"]
    attestors:
      - witnesses: [release, relase]
        count: 3
admission:
  cacheTtlSeconds: -1
server:
  port: 70000
`;

    it('reports every one of them, by path, in one error', () => {
      const err = errorOf(text);
      expect(err.code).toBe('CONFIG_INVALID');
      expect(err.issues.map((i) => i.path)).toEqual(
        expect.arrayContaining([
          'registries[0].host',
          'registries[1].embeded',
          'witnesses[1].key',
          'witnesses[2].name',
          'signingRules[0].algorithm',
          'signingRules[1]',
          'signingRules[1].enabled',
          'policies[0].images[0]',
          'policies[0].attestors[0].witnesses[1]',
          'policies[0].attestors[0].count',
          'admission.cacheTtlSeconds',
          'server.port',
        ]),
      );
      expect(err.issues).toHaveLength(12);
    });

    it('lists every issue on its own line of the message', () => {
      const err = errorOf(text);
      const lines = err.message.split('\n');
      expect(lines).toHaveLength(err.issues.length + 1);
      err.issues.forEach((issue, i) => expect(lines[i + 1]).toContain(issue.path));
    });
  });

  describe('when a key is unknown', () => {
    it('reports it with a suggestion at the top level', () => {
      const err = errorOf(`${WITNESSES}\nsigningRule: []\n`);
      expect(err.issues).toEqual([
        { path: 'signingRule', message: expect.stringContaining('did you mean "signingRules"') },
      ]);
    });

    it('reports it with a suggestion in a nested mapping', () => {
      const err = errorOf(rule('    witness: release\n    algorithm: ECDSA_SHA_256\n    enabeld: false\n'));
      expect(err.issues).toEqual([
        { path: 'signingRules[0].enabeld', message: expect.stringContaining('did you mean "enabled"') },
      ]);
    });

    it('reports a key in another case or spelling style', () => {
      const err = errorOf('signing_rules: []\n');
      expect(err.issues[0]?.message).toContain('did you mean "signingRules"');
    });

    it('reports __proto__ as an unknown key', () => {
      expect(pathsOf('__proto__: {}\n')).toEqual(['__proto__']);
    });
  });

  describe('when the YAML is not a configuration', () => {
    it('reports a syntax error with its line and column', () => {
      const err = errorOf('registries:\n  - host: [127.0.0.1:5000\n');
      expect(err.code).toBe('CONFIG_INVALID');
      expect(err.issues[0]?.path).toBe('(yaml)');
      expect(err.issues[0]?.message).toMatch(/^line \d+, column \d+: /);
    });

    it('reports duplicate keys', () => {
      const err = errorOf('admission:\n  noMatchingPolicy: deny\n  noMatchingPolicy: allow\n');
      expect(err.issues).toEqual([{ path: '(yaml)', message: expect.stringMatching(/^line 3, column 3: /) }]);
    });

    it.each([
      ['a list', 'server:\n  ? [a, b]\n  : 1\n', 2],
      ['an alias', 'x: &k port\nserver:\n  *k : 8080\n', 3],
      ['binary', 'server:\n  !!binary cG9ydA== : 8080\n', 2],
    ])('reports a mapping key that is %s, with its line', (_, text, line) => {
      const err = errorOf(text);
      expect(err.issues).toEqual([
        {
          path: '(yaml)',
          message: expect.stringMatching(
            new RegExp(`^line ${line}, column \\d+: a mapping key must be a plain value`),
          ),
        },
      ]);
    });

    it('reports several documents in one file', () => {
      expect(pathsOf('admission: {}\n---\nserver: {}\n')).toEqual(['(yaml)']);
    });

    it.each([
      ['empty', ''],
      ['only comments', '# nothing here\n'],
    ])('rejects an %s file', (_, text) => {
      expect(() => parse(text)).toThrowWithCode(ConfigError, 'CONFIG_INVALID');
      expect(pathsOf(text)).toEqual(['(root)']);
    });

    it.each([
      ['a list', '- host: 127.0.0.1:5000\n'],
      ['a string', 'registries\n'],
      ['a number', '42\n'],
    ])('rejects a root that is %s', (_, text) => {
      expect(() => parse(text)).toThrowWithCode(ConfigError, 'CONFIG_INVALID');
      expect(pathsOf(text)).toEqual(['(root)']);
    });
  });

  describe('registries', () => {
    it('fills defaults and resolves dataDir against the base directory', () => {
      const config = parse(
        'registries:\n  - host: localhost:5000\n  - host: r.example.com\n    dataDir: data/r\n',
      );
      expect(config.registries).toEqual([
        {
          host: 'localhost:5000',
          kind: 'distribution',
          embedded: false,
          insecure: false,
          auth: { $case: 'anonymous' },
          dataDir: '/srv/signet/.signet/registry/localhost_5000',
        },
        expect.objectContaining({ host: 'r.example.com', dataDir: '/srv/signet/data/r' }),
      ]);
    });

    it('reads basic auth with the password from the environment', () => {
      const config = parse(
        'registries:\n  - host: r.example.com\n    auth: {username: bot, passwordEnv: REG_PW}\n',
        {
          REG_PW: 's3cret',
        },
      );
      expect(config.registries[0]?.auth).toEqual({ $case: 'basic', username: 'bot', password: 's3cret' });
    });

    it('reports a passwordEnv variable that is not set', () => {
      const err = errorOf(
        'registries:\n  - host: r.example.com\n    auth: {username: bot, passwordEnv: REG_PW}\n',
      );
      expect(err.issues).toEqual([
        { path: 'registries[0].auth.passwordEnv', message: expect.stringContaining('REG_PW') },
      ]);
    });

    it('reports both password and passwordEnv, and a username without either', () => {
      expect(
        pathsOf(
          'registries:\n  - host: a.example.com\n    auth: {username: bot, password: x, passwordEnv: P}\n' +
            '  - host: b.example.com\n    auth: {username: bot}\n',
          { P: 'y' },
        ),
      ).toEqual(['registries[0].auth.passwordEnv', 'registries[1].auth']);
    });

    it('reads ECR auth, taking the region from the host', () => {
      const config = parse(
        'registries:\n  - host: 123456789012.dkr.ecr.eu-central-1.amazonaws.com\n    auth: ecr\n' +
          '  - host: ecr.local:4566\n    auth: {ecr: {region: us-east-1, endpoint: "http://localhost:4566"}}\n',
      );
      expect(config.registries.map((r) => r.auth)).toEqual([
        { $case: 'ecr', region: 'eu-central-1', endpoint: undefined },
        { $case: 'ecr', region: 'us-east-1', endpoint: 'http://localhost:4566' },
      ]);
    });

    it('reports duplicate hosts and a second or non-loopback embedded registry', () => {
      expect(
        pathsOf(
          'registries:\n  - host: 127.0.0.1:5000\n    embedded: true\n  - host: 127.0.0.1:5000\n' +
            '  - host: r.example.com\n    embedded: true\n',
        ),
      ).toEqual(['registries[1].host', 'registries[2].embedded', 'registries[2].embedded']);
    });
  });

  describe('witnesses', () => {
    const witness = (key: string, env: NodeJS.ProcessEnv = {}) =>
      parse(`witnesses:\n  - name: w\n    key: "${key}"\n`, env).witnesses[0]?.key;

    it('resolves relative and absolute file:// keys', () => {
      expect(witness('file://keys/a.pem')).toEqual({ $case: 'file', path: '/srv/signet/keys/a.pem' });
      expect(witness('file:///etc/signet/a.pem')).toEqual({ $case: 'file', path: '/etc/signet/a.pem' });
    });

    it.each([
      ['1234abcd-12ab-34cd-56ef-1234567890ab'],
      ['mrk-1234abcd12ab34cd56ef1234567890ab'],
      ['alias/signet/release_1'],
      ['arn:aws:kms:us-east-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab'],
      ['arn:aws:kms:us-east-2:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab'],
      ['arn:aws-us-gov:kms:us-gov-west-1:111122223333:alias/release'],
      ['arn:aws-cn:kms:cn-north-1:111122223333:alias/release'],
    ])('accepts the KMS key id %s', (keyId) => {
      expect(witness(`awskms:///${keyId}`)).toMatchObject({ $case: 'kms', keyId, endpoint: undefined });
    });

    it.each([
      ['not-a-key'],
      ['1234abcd-12ab-34cd-56ef-1234567890'],
      ['mrk-1234'],
      ['alias/'],
      ['alias/with space'],
      ['alias/aws/ebs'],
      ['arn:aws:kms:us-east-2:111122223333:key/not-a-uuid'],
      ['arn:aws:kms:us-east-2:1111:key/1234abcd-12ab-34cd-56ef-1234567890ab'],
      ['arn:aws:kms:nowhere:111122223333:alias/release'],
      ['arn:aws:s3:us-east-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab'],
      ['arn:aws:kms:us-east-2:111122223333:secret/x'],
    ])('rejects the KMS key id %s', (keyId) => {
      expect(pathsOf(`witnesses:\n  - name: w\n    key: "awskms:///${keyId}"\n`)).toEqual([
        'witnesses[0].key',
      ]);
    });

    it.each([
      ['awskms://alias/release', 'awskms:///alias/release'],
      ['awskms://arn:aws:kms:us-east-2:111122223333:alias/x', 'awskms:///arn'],
      ['alias/release', 'awskms:///alias/release'],
      ['keys/release.pem', 'file://keys/release.pem'],
      ['gcpkms://projects/p/locations/l/keyRings/r/cryptoKeys/k', 'not supported'],
      ['awskms://', 'awskms:///'],
    ])('rejects the key %s with a hint', (key, hint) => {
      const err = errorOf(`witnesses:\n  - name: w\n    key: "${key}"\n`);
      expect(err.issues).toEqual([{ path: 'witnesses[0].key', message: expect.stringContaining(hint) }]);
    });

    it('reads an endpoint from awskms://host:port/, over http for loopback hosts', () => {
      expect(witness('awskms://localhost:4566/alias/release')).toEqual({
        $case: 'kms',
        keyId: 'alias/release',
        region: undefined,
        endpoint: 'http://localhost:4566',
      });
      expect(witness('awskms://kms.example.com:8443/alias/release')).toMatchObject({
        endpoint: 'https://kms.example.com:8443',
      });
    });

    it('takes the region from an ARN before the environment', () => {
      const env = { AWS_REGION: 'eu-west-1' };
      expect(witness('awskms:///arn:aws:kms:ap-south-1:111122223333:alias/release', env)).toMatchObject({
        region: 'ap-south-1',
      });
      expect(witness('awskms:///alias/release', env)).toMatchObject({ region: 'eu-west-1' });
      expect(witness('awskms:///alias/release', { AWS_DEFAULT_REGION: 'us-west-2' })).toMatchObject({
        region: 'us-west-2',
      });
    });

    it('reads an inline PEM public key and rejects an inline private key', () => {
      const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const pub = publicKey.export({ type: 'spki', format: 'pem' }).toString();
      const priv = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
      const indent = (pem: string) => pem.trim().replace(/\n/g, '\n      ');
      const config = parse(`witnesses:\n  - name: w\n    publicKey: |\n      ${indent(pub)}\n`);
      expect(config.witnesses[0]?.key).toEqual({ $case: 'publicKeyPem', pem: pub });
      const err = errorOf(`witnesses:\n  - name: w\n    publicKey: |\n      ${indent(priv)}\n`);
      expect(err.issues).toEqual([
        { path: 'witnesses[0].publicKey', message: expect.stringContaining('private key') },
      ]);
    });

    it('reads certificate and keyless witnesses', () => {
      const config = parse(
        'witnesses:\n  - name: cert\n    certificate: file://c.pem\n    certificateChain: file:///ca/chain.pem\n' +
          '  - name: ci\n    description: GitHub Actions\n    keyless:\n' +
          '      issuer: https://token.actions.githubusercontent.com\n      subject: repo:org/app:ref:refs/heads/main\n',
      );
      expect(config.witnesses).toEqual([
        {
          name: 'cert',
          key: {
            $case: 'certificate',
            certificatePath: '/srv/signet/c.pem',
            chainPath: '/ca/chain.pem',
            rootPaths: [],
            trustedRootPath: undefined,
            requireSignedTime: false,
          },
          description: undefined,
        },
        {
          name: 'ci',
          key: {
            $case: 'keyless',
            issuer: 'https://token.actions.githubusercontent.com',
            subject: { $case: 'exact', subject: 'repo:org/app:ref:refs/heads/main' },
            trustedRootPath: undefined,
            github: undefined,
          },
          description: 'GitHub Actions',
        },
      ]);
    });

    it('reports a witness with no key, with two keys, and a bad name', () => {
      expect(
        pathsOf(
          'witnesses:\n  - name: a\n  - name: b\n    key: file://b.pem\n    publicKey: file://b.pub\n' +
            '  - name: Bad Name\n    key: file://c.pem\n  - name: d\n    key: file://d.pem\n    certificateChain: file://x\n',
        ),
      ).toEqual(['witnesses[0]', 'witnesses[1]', 'witnesses[2].name', 'witnesses[3].certificateChain']);
    });

    it('reports duplicate witness names', () => {
      expect(pathsOf(`${WITNESSES}  - name: release\n    key: file://other.pem\n`)).toEqual([
        'witnesses[2].name',
      ]);
    });
  });

  describe('signing rules', () => {
    it.each(Object.entries(ALGORITHM_ALIASES))('accepts the algorithm %s as %s', (alias, canonical) => {
      const config = parse(rule(`    witness: release\n    algorithm: ${alias}\n`));
      expect(config.signingRules[0]?.algorithm).toBe(canonical);
    });

    it('suggests the closest algorithm name', () => {
      const err = errorOf(rule('    witness: release\n    algorithm: RSA_PKCS1_SHA256\n'));
      expect(err.issues).toEqual([
        {
          path: 'signingRules[0].algorithm',
          message: expect.stringContaining('did you mean "RSA_PKCS1_SHA_256"'),
        },
      ]);
    });

    it('reports a verify-only witness', () => {
      const err = errorOf(rule('    witness: partner\n    algorithm: ECDSA_SHA_256\n'));
      expect(err.issues).toEqual([
        { path: 'signingRules[0].witness', message: expect.stringContaining('verify-only') },
      ]);
    });

    it('reports an unknown witness with a suggestion', () => {
      const err = errorOf(rule('    witness: relaese\n    algorithm: ECDSA_SHA_256\n'));
      expect(err.issues).toEqual([
        { path: 'signingRules[0].witness', message: expect.stringContaining('did you mean "release"') },
      ]);
    });

    it('reports missing witness and algorithm, and a rule that says nothing about what it signs', () => {
      expect(pathsOf(`${WITNESSES}\nsigningRules:\n  - name: r\n    namespaces: []\n`)).toEqual([
        'signingRules[0]',
        'signingRules[0].witness',
        'signingRules[0].algorithm',
      ]);
    });

    it('reports bad namespaces, repository globs, registries and annotations', () => {
      expect(
        pathsOf(`registries:\n  - host: 127.0.0.1:5000\n${WITNESSES}
signingRules:
  - name: r
    namespaces: ["team-*", Team]
    repositories: ["127.0.0.1:5000/team/*", "team/[ab]", "Team/x"]
    registries: [127.0.0.1:5000, 123456789012.dkr.ecr.us-east-1.amazonaws.com, other.example.com]
    witness: release
    algorithm: ECDSA_SHA_256
    annotations: {team: a, build: 42}
`),
      ).toEqual([
        'signingRules[0].namespaces[0]',
        'signingRules[0].namespaces[1]',
        'signingRules[0].repositories[0]',
        'signingRules[0].repositories[1]',
        'signingRules[0].repositories[2]',
        'signingRules[0].registries[1]',
        'signingRules[0].registries[2]',
        'signingRules[0].annotations.build',
      ]);
    });

    it('reads every field', () => {
      const config = parse(`registries:\n  - host: 127.0.0.1:5000\n${WITNESSES}
signingRules:
  - name: all
    repositories: ["apps/**"]
    registries: [127.0.0.1:5000]
    witness: release
    algorithm: ECDSA_SHA_384
    signatureType: simple
    trigger: manual
    enabled: false
    recursive: true
    bundle: true
    annotations: {team: a, "org.example/owner": b}
`);
      expect(config.signingRules[0]).toEqual({
        name: 'all',
        namespaces: [],
        repositories: ['apps/**'],
        registries: ['127.0.0.1:5000'],
        witness: 'release',
        algorithm: 'ECDSA_SHA_384',
        signatureType: 'simple',
        trigger: 'manual',
        enabled: false,
        recursive: true,
        bundle: true,
        annotations: { team: 'a', 'org.example/owner': 'b' },
      });
    });

    it('reports duplicate rule names', () => {
      const text = rule('    witness: release\n    algorithm: ECDSA_SHA_256\n');
      expect(
        pathsOf(
          `${text}  - name: r\n    namespaces: [b]\n    witness: release\n    algorithm: ECDSA_SHA_256\n`,
        ),
      ).toEqual(['signingRules[1].name']);
    });
  });

  describe('policies', () => {
    const attestors = '    images: ["r.example.com/**"]\n    attestors:\n';

    it('fills defaults: disabled, any cluster and namespace, enforce, count = all witnesses', () => {
      const config = parse(policy(`${attestors}      - witnesses: [release, partner]\n`));
      expect(config.policies[0]).toEqual({
        name: 'p',
        enabled: false,
        clusters: ['*'],
        namespaces: ['*'],
        images: ['r.example.com/**'],
        attestors: [{ witnesses: ['release', 'partner'], count: 2 }],
        mode: 'enforce',
        mutateDigest: false,
        failurePolicy: 'deny',
        signedIdentity: { type: 'matchRepository' },
      });
    });

    it('reports an unknown witness in an attestor set', () => {
      const err = errorOf(policy(`${attestors}      - witnesses: [release, nobody]\n`));
      expect(err.issues.map((i) => i.path)).toEqual(['policies[0].attestors[0].witnesses[1]']);
      expect(err.issues[0]?.message).toContain('unknown witness "nobody"');
    });

    it.each([[0], [3], [1.5], ['"1"']])('reports count %s out of range for two witnesses', (count) => {
      expect(
        pathsOf(policy(`${attestors}      - witnesses: [release, partner]\n        count: ${count}\n`)),
      ).toEqual(['policies[0].attestors[0].count']);
    });

    describe('signedIdentity', () => {
      const withIdentity = (identity: string): string =>
        policy(`${attestors}      - witnesses: [release]\n    signedIdentity: ${identity}\n`);

      it.each<[string, unknown]>([
        ['{type: matchRepository}', { type: 'matchRepository' }],
        ['{type: matchDigest}', { type: 'matchDigest' }],
        [
          '{type: exactRepository, dockerRepository: Registry.Example.com:443/prod/app}',
          { type: 'exactRepository', dockerRepository: 'registry.example.com/prod/app' },
        ],
        [
          '{type: remapIdentity, prefix: mirror.example.com/upstream, signedPrefix: registry.example.com}',
          {
            type: 'remapIdentity',
            prefix: 'mirror.example.com/upstream',
            signedPrefix: 'registry.example.com',
          },
        ],
      ])('reads %s with canonical hosts', (text, expected) => {
        expect(parse(withIdentity(text)).policies[0]?.signedIdentity).toStrictEqual(expected);
      });

      it.each([
        ['{type: matchRepo}', ['policies[0].signedIdentity.type']],
        ['{type: exactRepository}', ['policies[0].signedIdentity.dockerRepository']],
        [
          '{type: exactRepository, dockerRepository: prod/app}',
          ['policies[0].signedIdentity.dockerRepository'],
        ],
        [
          '{type: exactRepository, dockerRepository: r.example.com/app:v1}',
          ['policies[0].signedIdentity.dockerRepository'],
        ],
        ['{type: matchDigest, prefix: r.example.com}', ['policies[0].signedIdentity.prefix']],
        ['{type: remapIdentity, prefix: r.example.com}', ['policies[0].signedIdentity.signedPrefix']],
        ['matchRepository', ['policies[0].signedIdentity']],
      ])('reports %s', (text, paths) => {
        expect(pathsOf(withIdentity(text))).toEqual(paths);
      });
    });

    it('keeps image globs with their host in canonical form', () => {
      const config = parse(
        policy(
          '    images: ["Registry.Example.com:443/team/**", "index.docker.io/library/*"]\n    attestors:\n      - witnesses: [release]\n',
        ),
      );
      expect(config.policies[0]?.images).toEqual(['registry.example.com/team/**', 'docker.io/library/*']);
    });

    it('reports a witness listed twice in one set', () => {
      expect(pathsOf(policy(`${attestors}      - witnesses: [release, release]\n`))).toEqual([
        'policies[0].attestors[0].witnesses[1]',
      ]);
    });

    it('reports missing images and attestors, and empty lists', () => {
      expect(pathsOf(policy('    clusters: []\n'))).toEqual([
        'policies[0].clusters',
        'policies[0].images',
        'policies[0].attestors',
      ]);
      expect(pathsOf(policy('    images: []\n    attestors: []\n'))).toEqual([
        'policies[0].images',
        'policies[0].attestors',
      ]);
    });

    it.each([
      ['**'],
      ['*'],
      ['**/team-a/*'],
      ['team-a/**'],
      ['**.example.com/**'],
      ['*.*/**'],
      ['r.example.com'],
      ['r.example.com/'],
      ['r.example.com/[ab]'],
    ])('rejects the image glob %s', (glob) => {
      expect(
        pathsOf(policy(`    images: ["${glob}"]\n    attestors:\n      - witnesses: [release]\n`)),
      ).toEqual(['policies[0].images[0]']);
    });

    it.each([
      ['127.0.0.1:5000/team-a/**'],
      ['*.dkr.ecr.*.amazonaws.com/**'],
      ['localhost/app'],
      ['r.example.com/app:v?'],
    ])('accepts the image glob %s', (glob) => {
      const config = parse(policy(`    images: ["${glob}"]\n    attestors:\n      - witnesses: [release]\n`));
      expect(config.policies[0]?.images).toEqual([glob]);
    });

    it('rejects a glob longer than 512 characters', () => {
      const glob = `r.example.com/${'a'.repeat(600)}`;
      expect(
        pathsOf(policy(`    images: ["${glob}"]\n    attestors:\n      - witnesses: [release]\n`)),
      ).toEqual(['policies[0].images[0]']);
    });

    it('reports duplicate policy names and bad enums', () => {
      const one = `  - name: p\n    images: ["r.example.com/**"]\n    attestors: [{witnesses: [release]}]\n`;
      expect(
        pathsOf(`${WITNESSES}policies:\n${one}${one}    mode: enforcing\n    failurePolicy: ignore\n`),
      ).toEqual(['policies[1].mode', 'policies[1].failurePolicy', 'policies[1].name']);
    });
  });

  describe('admission and server', () => {
    it('reads every field', () => {
      const config = parse(
        'admission:\n  noMatchingPolicy: warn\n  cacheTtlSeconds: 0\n  cacheMaxEntries: 50\n  excludeNamespaces: [kube-system]\n' +
          '  deadlineSeconds: 5\n  maxSignatures: 16\n  maxReviewBytes: 1048576\n' +
          'server:\n  port: 0\n  host: 0.0.0.0\n  maxBodyBytes: 1048576\n  bearerTokenEnv: SIGNET_TOKEN\n  secretPath: abc123\n' +
          '  eventsTokenEnv: SIGNET_EVENTS_TOKEN\n  maxInFlight: 32\n  shutdownGraceSeconds: 5\n' +
          '  tls: {certFile: tls/tls.crt, keyFile: /etc/signet/tls/tls.key, clientCaFile: file://ca.pem}\n' +
          'journal:\n  path: state/j.db\n  maxAttempts: 3\n  retryBaseSeconds: 2\n  retryMaxSeconds: 60\n  concurrency: 4\n',
        { SIGNET_TOKEN: 'token', SIGNET_EVENTS_TOKEN: 'events-token-0123456789' },
      );
      expect(config.admission).toStrictEqual({
        noMatchingPolicy: 'warn',
        cacheTtlSeconds: 0,
        cacheMaxEntries: 50,
        excludeNamespaces: ['kube-system'],
        deadlineMs: 5000,
        maxSignatures: 16,
        maxReviewBytes: 1048576,
      });
      expect(config.server).toStrictEqual({
        port: 0,
        host: '0.0.0.0',
        maxBodyBytes: 1048576,
        bearerToken: 'token',
        secretPath: 'abc123',
        eventsToken: 'events-token-0123456789',
        maxInFlight: 32,
        shutdownGraceMs: 5000,
        tls: {
          certFile: path.resolve(config.baseDir, 'tls/tls.crt'),
          keyFile: '/etc/signet/tls/tls.key',
          clientCaFile: path.resolve(config.baseDir, 'ca.pem'),
        },
      });
      expect(config.journal).toStrictEqual({
        path: path.resolve(config.baseDir, 'state/j.db'),
        maxAttempts: 3,
        retryBaseMs: 2000,
        retryMaxMs: 60000,
        concurrency: 4,
      });
    });

    it('fills the journal with its defaults under the config directory', () => {
      const config = parse('admission:\n  noMatchingPolicy: deny\n');
      expect(config.journal).toStrictEqual({
        path: path.resolve(config.baseDir, '.signet', 'journal.db'),
        maxAttempts: 8,
        retryBaseMs: 1000,
        retryMaxMs: 300000,
        concurrency: 8,
      });
      expect(config.server.eventsToken).toBeUndefined();
    });

    it('reads the secret path from the environment', () => {
      expect(
        parse('server:\n  secretPathEnv: SIGNET_PATH\n', { SIGNET_PATH: 'a-b_c.d~e' }).server.secretPath,
      ).toBe('a-b_c.d~e');
      expect(pathsOf('server:\n  secretPathEnv: SIGNET_PATH\n')).toEqual(['server.secretPathEnv']);
    });

    it('refuses an events token that is short or equal to the bearer token', () => {
      expect(pathsOf('server:\n  eventsToken: short\n')).toEqual(['server.eventsToken']);
      expect(
        pathsOf('server:\n  eventsToken: same-token-0123456789\n  bearerToken: same-token-0123456789\n'),
      ).toEqual(['server.eventsToken']);
      expect(pathsOf('journal:\n  retryBaseSeconds: 60\n  retryMaxSeconds: 10\n')).toEqual([
        'journal.retryMaxSeconds',
      ]);
    });

    it('reports bad values', () => {
      expect(
        pathsOf(
          'admission:\n  noMatchingPolicy: maybe\n  excludeNamespaces: ["kube-*"]\n' +
            'server:\n  bearerTokenEnv: MISSING\n  secretPath: a/b\n  maxBodyBytes: 1\n',
        ),
      ).toEqual([
        'admission.noMatchingPolicy',
        'admission.excludeNamespaces[0]',
        'server.bearerTokenEnv',
        'server.maxBodyBytes',
        'server.secretPath',
      ]);
    });

    it('reads `key:` with no value as absent', () => {
      const config = parse('registries:\nwitnesses:\nadmission:\n  noMatchingPolicy:\nserver:\n');
      expect(config.admission.noMatchingPolicy).toBe('deny');
      expect(config.registries).toEqual([]);
    });
  });
});
