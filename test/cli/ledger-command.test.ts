/**
 * `signet ledger` and `signet findings` (cli/commands/ledger.ts) without the network: the filters
 * read from the command line (`readQuery`, `timeOf`, `--kind`), the DynamoDB flags refused before
 * any AWS client is made, the terminal tables (`ledgerText`, `findingsText`), and `--json` from a
 * real SqliteLedger in a temporary journal file.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { parseCommandLine, type Flags } from '../../cli/args';
import type { CommandContext } from '../../cli/commands/context';
import { findings, findingsText, ledger, ledgerText, readQuery, timeOf } from '../../cli/commands/ledger';
import { EXIT } from '../../cli/spec';
import { InputError } from '../../lib/core/errors';
import { silentLogger } from '../../lib/core/logger';
import { Journal } from '../../lib/journal';
import { SqliteLedger } from '../../lib/ledger/sqlite';
import { T0, decision, digestOf, finding, image, signature } from '../ledger/behaviour';

/** A stdout or stderr that keeps what was written. */
class Capture extends Writable {
  text = '';
  override _write(chunk: Buffer, _encoding: string, done: () => void): void {
    this.text += chunk.toString();
    done();
  }
}

/** The flags of `signet <command> ...argv`, parsed as the CLI parses them. */
function flagsOf(command: 'ledger' | 'findings', argv: readonly string[]): Flags {
  const invocation = parseCommandLine([command, ...argv]);
  if (invocation.$case !== 'run') throw new Error(`not a command line that runs: ${invocation.$case}`);
  return invocation.flags;
}

const queryOf = (argv: readonly string[], now = NOW): ReturnType<typeof readQuery> =>
  readQuery({ flags: flagsOf('ledger', argv) }, now);

/** The InputError `body` throws, to check which flag it names. */
function inputErrorOf(body: () => unknown): InputError {
  try {
    body();
  } catch (error) {
    if (error instanceof InputError) return error;
    throw error;
  }
  throw new Error('nothing thrown');
}

const NOW = Date.parse('2026-11-20T12:00:00.000Z');
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const D1 = digestOf(1);
const D2 = digestOf(2);

describe('readQuery', () => {
  describe('when no filter is given', () => {
    it('asks for the 50 newest of everything', () => {
      expect(queryOf([])).toEqual({ limit: 50 });
    });
  });

  describe('when --image names a repository only', () => {
    it('selects the repository, canonical, without a tag', () => {
      expect(queryOf(['--image', '127.0.0.1:5000/team-a/app'])).toEqual({
        repository: '127.0.0.1:5000/team-a/app',
        limit: 50,
      });
      // Docker Hub names are read the way runtimes read them.
      expect(queryOf(['--image', 'nginx'])).toMatchObject({ repository: 'docker.io/library/nginx' });
      expect(queryOf(['--image', 'nginx']).tag).toBeUndefined();
    });
  });

  describe('when --image names a tag', () => {
    it('selects that tag only', () => {
      expect(queryOf(['--image', 'registry.example/team-a/app:v1'])).toEqual({
        repository: 'registry.example/team-a/app',
        tag: 'v1',
        limit: 50,
      });
    });

    it('does not take the registry port for a tag', () => {
      expect(queryOf(['--image', 'localhost:5000/app']).tag).toBeUndefined();
    });
  });

  describe('when --image names a digest', () => {
    it('selects the digest, and the tag only when it is written too', () => {
      expect(queryOf(['--image', `registry.example/team-a/app@${D1}`])).toEqual({
        repository: 'registry.example/team-a/app',
        digest: D1,
        limit: 50,
      });
      expect(queryOf(['--image', `registry.example/team-a/app:v1@${D1}`])).toEqual({
        repository: 'registry.example/team-a/app',
        tag: 'v1',
        digest: D1,
        limit: 50,
      });
    });
  });

  describe('when --image is not an image reference', () => {
    it('throws naming --image', () => {
      const error = inputErrorOf(() => queryOf(['--image', 'Team-A/App']));
      expect(error.field).toBe('--image');
    });
  });

  describe('when --digest is given', () => {
    it('selects it', () => {
      expect(queryOf(['--digest', D2])).toEqual({ digest: D2, limit: 50 });
    });

    it.each([
      ['a bare hex', D2.slice('sha256:'.length)],
      ['upper-case hex', `sha256:${'A'.repeat(64)}`],
      ['too short', `sha256:${'a'.repeat(63)}`],
      ['another algorithm', `sha512:${'a'.repeat(64)}`],
    ])('refuses %s with REQUEST_INVALID naming --digest', (_case, digest) => {
      expect(() => queryOf(['--digest', digest])).toThrowWithCode(InputError, 'REQUEST_INVALID');
      expect(inputErrorOf(() => queryOf(['--digest', digest])).field).toBe('--digest');
    });

    it('agrees with the digest --image names', () => {
      expect(queryOf(['--image', `registry.example/team-a/app@${D1}`, '--digest', D1])).toMatchObject({
        digest: D1,
      });
    });

    it('refuses a digest other than the one --image names', () => {
      const argv = ['--image', `registry.example/team-a/app@${D1}`, '--digest', D2];
      expect(() => queryOf(argv)).toThrowWithCode(InputError, 'REQUEST_INVALID');
      expect(inputErrorOf(() => queryOf(argv)).field).toBe('--digest');
    });
  });

  describe('when --witness is given', () => {
    it('selects signatures by that witness', () => {
      expect(queryOf(['--witness', 'release'])).toEqual({ witness: 'release', limit: 50 });
    });
  });

  describe('when --since and --until are given', () => {
    it('reads a date-time with a zone', () => {
      expect(queryOf(['--since', '2026-11-01T06:30:00Z', '--until', '2026-11-02T08:00:00+02:00'])).toEqual({
        since: Date.parse('2026-11-01T06:30:00Z'),
        until: Date.parse('2026-11-02T06:00:00Z'),
        limit: 50,
      });
    });

    it('reads a date as midnight UTC', () => {
      expect(queryOf(['--since', '2026-11-01', '--until', '2026-11-02'])).toMatchObject({
        since: Date.parse('2026-11-01T00:00:00Z'),
        until: Date.parse('2026-11-02T00:00:00Z'),
      });
    });

    it('reads an age as that long before now', () => {
      expect(queryOf(['--since', '7d', '--until', '90m'])).toMatchObject({
        since: NOW - 7 * DAY,
        until: NOW - 90 * 60_000,
      });
      expect(queryOf(['--since', '24h'])).toMatchObject({ since: NOW - 24 * HOUR });
      expect(queryOf(['--since', '30s'])).toMatchObject({ since: NOW - 30_000 });
    });

    it('mixes the forms', () => {
      expect(queryOf(['--since', '2026-11-19', '--until', '1h'])).toMatchObject({
        since: Date.parse('2026-11-19T00:00:00Z'),
        until: NOW - HOUR,
      });
    });
  });

  describe('when --until is not after --since', () => {
    it.each([
      ['before', ['--since', '2026-11-02', '--until', '2026-11-01']],
      ['equal', ['--since', '2026-11-01', '--until', '2026-11-01T00:00:00Z']],
      ['an older age', ['--since', '1h', '--until', '2h']],
    ])('refuses it (%s) naming --until', (_case, argv) => {
      expect(() => queryOf(argv)).toThrowWithCode(InputError, 'REQUEST_INVALID');
      expect(inputErrorOf(() => queryOf(argv)).field).toBe('--until');
    });
  });

  describe('when --limit is given', () => {
    it('asks for at most that many', () => {
      expect(queryOf(['--limit', '1'])).toEqual({ limit: 1 });
      expect(queryOf(['--limit', '999999'])).toEqual({ limit: 999_999 });
    });

    it.each(['0', '-1', '1.5', 'ten', '007', '1000000', ''])('refuses "%s" naming --limit', (limit) => {
      expect(() => queryOf(['--limit', limit])).toThrowWithCode(InputError, 'REQUEST_INVALID');
      expect(inputErrorOf(() => queryOf(['--limit', limit])).field).toBe('--limit');
    });
  });

  describe('when every filter is given', () => {
    it('asks for all of them', () => {
      expect(
        queryOf([
          '--image',
          'registry.example/team-a/app:v1',
          '--digest',
          D1,
          '--witness',
          'release',
          '--since',
          '2d',
          '--until',
          '2026-11-20T11:00:00Z',
          '--limit',
          '5',
        ]),
      ).toEqual({
        repository: 'registry.example/team-a/app',
        tag: 'v1',
        digest: D1,
        witness: 'release',
        since: NOW - 2 * DAY,
        until: Date.parse('2026-11-20T11:00:00Z'),
        limit: 5,
      });
    });
  });
});

describe('timeOf', () => {
  it('reads date-times with or without seconds, fractions and offsets', () => {
    expect(timeOf('--since', '2026-11-01T10:15Z', NOW)).toBe(Date.parse('2026-11-01T10:15:00Z'));
    expect(timeOf('--since', '2026-11-01T10:15:30.250Z', NOW)).toBe(Date.parse('2026-11-01T10:15:30.250Z'));
    expect(timeOf('--since', '2026-11-01T10:15:00-05:00', NOW)).toBe(Date.parse('2026-11-01T15:15:00Z'));
  });

  describe('when the value is none of the three forms', () => {
    it.each([
      ['a date-time without a zone', '2026-11-01T00:00:00'],
      ['a date with a time but no T', '2026-11-01 00:00:00Z'],
      ['an age without a unit', '90'],
      ['an age in weeks', '2w'],
      ['a negative age', '-1d'],
      ['a month out of range', '2026-13-01'],
      ['an hour out of range', '2026-11-01T25:00:00Z'],
      ['a day that February lacks', '2026-02-30'],
      ['a day that November lacks, with a time', '2026-11-31T00:00:00Z'],
      ['words', 'yesterday'],
      ['nothing', ''],
    ])('refuses %s, naming the flag it was given to', (_case, value) => {
      expect(() => timeOf('--until', value, NOW)).toThrowWithCode(InputError, 'REQUEST_INVALID');
      expect(inputErrorOf(() => timeOf('--until', value, NOW)).field).toBe('--until');
      expect(inputErrorOf(() => timeOf('--since', value, NOW)).field).toBe('--since');
    });
  });

  it('names the flag through readQuery too', () => {
    expect(inputErrorOf(() => queryOf(['--since', 'last week'])).field).toBe('--since');
    expect(inputErrorOf(() => queryOf(['--until', '2026-02-29'])).field).toBe('--until');
  });

  it('reads 29 February in a leap year', () => {
    expect(timeOf('--since', '2028-02-29', NOW)).toBe(Date.parse('2028-02-29T00:00:00Z'));
  });
});

describe('ledgerText', () => {
  const signed = signature({
    id: 's1',
    signedAt: Date.parse('2026-11-20T10:00:00.123Z'),
    tag: 'v1',
    digest: D1,
    keyId: `sha256:${'ab'.repeat(32)}`,
  });
  const untaggedNoKey = signature({
    id: 's2',
    signedAt: Date.parse('2026-11-20T09:00:00Z'),
    tag: undefined,
    digest: D2,
    keyId: undefined,
    witness: 'qa',
    rule: 'team-b',
    status: 'already-signed',
  });
  const denied = decision({
    id: 'd1',
    decidedAt: Date.parse('2026-11-20T11:00:00Z'),
    effect: 'deny',
    object: 'Pod team-a/web',
    images: [
      image({
        reference: 'registry.example/team-a/app:v1',
        digest: D1,
        verdict: 'deny',
        reason: 'NO_SIGNATURES',
      }),
      image({ reference: `registry.example/team-a/app@${D2}`, digest: D2, verdict: 'allow' }),
    ],
  });
  const verified = decision({
    id: 'd2',
    source: 'verify',
    object: undefined,
    namespace: 'team-b',
    images: [
      image({ image: 'app:v2', reference: undefined, digest: undefined, verdict: 'warn', reason: undefined }),
    ],
  });
  const lines = (text: string): string[] => text.split('\n');

  describe('when there are signatures and decisions', () => {
    const text = ledgerText([signed, untaggedNoKey], [denied, verified], 'all');

    it('prints a signatures table with every column', () => {
      expect(text.startsWith('Signatures\n')).toBe(true);
      const header = lines(text)[1] as string;
      expect(header.split(/\s{2,}/)).toEqual([
        'SIGNED AT',
        'IMAGE',
        'RULE',
        'WITNESS',
        'KEY ID',
        'ALGORITHM',
        'STATUS',
      ]);
      const row = (lines(text)[2] as string).split(/\s{2,}/);
      expect(row).toEqual([
        '2026-11-20T10:00:00Z',
        `registry.example/team-a/app:v1@${D1}`,
        'team-a',
        'release',
        `sha256:${'ab'.repeat(6)}…`,
        'ecdsa-p256-sha256',
        'signed',
      ]);
    });

    it('prints an image without a tag and a signature without a key id as such', () => {
      const row = (lines(text)[3] as string).split(/\s{2,}/);
      expect(row).toEqual([
        '2026-11-20T09:00:00Z',
        `registry.example/team-a/app@${D2}`,
        'team-b',
        'qa',
        '-',
        'ecdsa-p256-sha256',
        'already-signed',
      ]);
    });

    it('prints a decisions table with every image and its verdict', () => {
      const at = lines(text).indexOf('Decisions');
      expect(at).toBeGreaterThan(3);
      expect((lines(text)[at + 1] as string).split(/\s{2,}/)).toEqual([
        'DECIDED AT',
        'EFFECT',
        'SOURCE',
        'OBJECT',
        'IMAGES',
      ]);
      const row = (lines(text)[at + 2] as string).split(/\s{2,}/);
      expect(row.slice(0, 4)).toEqual(['2026-11-20T11:00:00Z', 'deny', 'admission', 'Pod team-a/web']);
      // A tag is shown with its short digest; a reference by digest already shows it.
      expect(row[4]).toBe(
        `registry.example/team-a/app:v1 (${D1.slice(0, 19)}…): deny NO_SIGNATURES, ` +
          `registry.example/team-a/app@${D2}: allow`,
      );
    });

    it('names the namespace when there is no object, and the image as written when it did not parse', () => {
      const at = lines(text).indexOf('Decisions');
      const row = (lines(text)[at + 3] as string).split(/\s{2,}/);
      expect(row).toEqual(['2026-11-20T10:00:00Z', 'allow', 'verify', 'namespace team-b', 'app:v2: warn']);
    });
  });

  describe('when nothing matched', () => {
    it('says so for each kind asked for', () => {
      expect(ledgerText([], [], 'all')).toBe('no signatures\n\nno decisions\n');
      expect(ledgerText([], [], 'signatures')).toBe('no signatures\n');
      expect(ledgerText([], [], 'decisions')).toBe('no decisions\n');
    });
  });

  describe('when one kind is asked for', () => {
    it('prints that table only', () => {
      const signaturesOnly = ledgerText([signed], [denied], 'signatures');
      expect(signaturesOnly).toContain('Signatures\n');
      expect(signaturesOnly).not.toContain('Decisions');
      expect(signaturesOnly).not.toContain('no decisions');
      const decisionsOnly = ledgerText([signed], [denied], 'decisions');
      expect(decisionsOnly.startsWith('Decisions\n')).toBe(true);
      expect(decisionsOnly).not.toContain('SIGNED AT');
    });
  });

  describe('when a decision has no object and no namespace', () => {
    it('prints a dash', () => {
      const text = ledgerText([], [decision({ object: undefined, namespace: undefined })], 'decisions');
      expect((lines(text)[2] as string).split(/\s{2,}/)[3]).toBe('-');
    });
  });
});

describe('findingsText', () => {
  describe('when there is none', () => {
    it('says so', () => {
      expect(findingsText([])).toBe('no findings\n');
    });
  });

  describe('when there are open and resolved findings', () => {
    const open = finding({
      id: 'f1',
      firstFoundAt: Date.parse('2026-11-20T10:00:00.500Z'),
      code: 'SIGNATURE_REVOKED',
      message: 'the key of witness release is revoked',
      namespace: 'team-a',
      cluster: 'prod-eu',
    });
    const resolved = finding({
      id: 'f2',
      reference: 'registry.example/team-b/api:v3',
      digest: D2,
      namespace: '',
      cluster: '',
      firstFoundAt: Date.parse('2026-11-19T08:00:00Z'),
      resolvedAt: Date.parse('2026-11-19T09:30:00Z'),
      message: 'no signatures by release',
    });
    const text = findingsText([open, resolved]);
    const rows = text.split('\n');

    it('prints a table with every column', () => {
      expect((rows[0] as string).split(/\s{2,}/)).toEqual([
        'FOUND AT',
        'CODE',
        'IMAGE',
        'DIGEST',
        'NAMESPACE',
        'CLUSTER',
      ]);
      expect((rows[1] as string).split(/\s{2,}/)).toEqual([
        '2026-11-20T10:00:00Z',
        'SIGNATURE_REVOKED',
        'registry.example/team-a/app:v1',
        `${D1.slice(0, 19)}…`,
        'team-a',
        'prod-eu',
      ]);
    });

    it('marks a resolved finding with its time, and unknown placements with a dash', () => {
      expect((rows[2] as string).split(/\s{2,}/)).toEqual([
        '2026-11-19T08:00:00Z',
        'NO_SIGNATURES (resolved 2026-11-19T09:30:00Z)',
        'registry.example/team-b/api:v3',
        `${D2.slice(0, 19)}…`,
        '-',
        '-',
      ]);
    });

    it('prints each message under its id, after a blank line', () => {
      expect(rows.slice(3)).toEqual([
        '',
        '  f1: the key of witness release is revoked',
        '  f2: no signatures by release',
        '',
      ]);
    });
  });
});

describe('the commands', () => {
  let dir: string;
  let configPath: string;
  let journalFile: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'signet-ledger-command-'));
    journalFile = join(dir, 'journal.db');
    configPath = join(dir, 'signet.yaml');
    await writeFile(
      configPath,
      `registries:
  - host: registry.example
witnesses:
  - name: release
    key: file://keys/release.pem
signingRules:
  - name: team-a
    namespaces: [team-a]
    witness: release
    algorithm: ECDSA_SHA_256
journal:
  path: journal.db
`,
    );
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** Runs a command with the flags of `argv` against this test's config; what it printed. */
  async function run(
    command: typeof ledger,
    name: 'ledger' | 'findings',
    argv: readonly string[],
  ): Promise<{ code: number; out: string }> {
    const out = new Capture();
    const flags = flagsOf(name, argv);
    const ctx: CommandContext = {
      args: [],
      flags,
      out,
      err: new Capture(),
      logger: silentLogger,
      configPath,
      json: flags.boolean('json'),
    };
    const code = await command(ctx);
    return { code, out: out.text };
  }

  /** Writes records as the service does: the journal's owner opens the ledger for writing. */
  async function record(write: (store: SqliteLedger) => Promise<void>): Promise<void> {
    const journal = Journal.open(journalFile);
    const store = SqliteLedger.open(journal, { retentionDays: 30 });
    try {
      await write(store);
    } finally {
      await store.close();
      journal.close();
    }
  }

  describe('when --kind is not one of signatures, decisions, all', () => {
    it('refuses it naming --kind', async () => {
      const rejection = run(ledger, 'ledger', ['--kind', 'signature']);
      await expect(rejection).toThrowWithCode(InputError, 'REQUEST_INVALID');
      await expect(run(ledger, 'ledger', ['--kind', 'everything'])).rejects.toMatchObject({
        field: '--kind',
      });
    });
  });

  describe('when --endpoint is given without --table', () => {
    it.each([
      ['ledger', ledger],
      ['findings', findings],
    ] as const)('%s refuses it naming --endpoint', async (name, command) => {
      const rejection = run(command, name, ['--endpoint', 'http://127.0.0.1:8000']);
      await expect(rejection).rejects.toBeInstanceOf(InputError);
      await expect(rejection).rejects.toMatchObject({ code: 'REQUEST_INVALID', field: '--endpoint' });
    });
  });

  describe('when --table is not a DynamoDB table name', () => {
    it.each([
      ['ledger', ledger, 'ab'],
      ['ledger', ledger, 'my table'],
      ['findings', findings, 'arn:aws:dynamodb:eu-west-1:123456789012:table/x'],
    ] as const)('%s refuses "%s" naming --table', async (name, command, table) => {
      const rejection = run(command, name, ['--table', table, '--endpoint', 'http://127.0.0.1:1']);
      await expect(rejection).rejects.toBeInstanceOf(InputError);
      await expect(rejection).rejects.toMatchObject({ code: 'REQUEST_INVALID', field: '--table' });
    });
  });

  describe('when --endpoint with --table is not an http(s) URL', () => {
    it('refuses it naming --endpoint', async () => {
      const rejection = run(ledger, 'ledger', ['--table', 'SignetLedger', '--endpoint', 'ftp://127.0.0.1']);
      await expect(rejection).rejects.toMatchObject({ code: 'REQUEST_INVALID', field: '--endpoint' });
    });
  });

  describe('when the journal file does not exist yet', () => {
    it('lists nothing and succeeds', async () => {
      expect(await run(ledger, 'ledger', [])).toEqual({
        code: EXIT.ok,
        out: 'no signatures\n\nno decisions\n',
      });
      expect(await run(ledger, 'ledger', ['--json'])).toEqual({
        code: EXIT.ok,
        out: `${JSON.stringify({ signatures: [], decisions: [] }, null, 2)}\n`,
      });
      expect(await run(findings, 'findings', ['--json'])).toEqual({ code: EXIT.ok, out: '[]\n' });
    });
  });

  describe('when the ledger holds signatures and decisions', () => {
    const s1 = signature({ id: 's1', signedAt: T0, digest: D1, witness: 'release' });
    const s2 = signature({
      id: 's2',
      signedAt: T0 + HOUR,
      digest: D2,
      tag: 'v2',
      witness: 'qa',
      keyId: undefined,
    });
    const d1 = decision({ id: 'd1', decidedAt: T0 + 2 * HOUR, images: [image({ digest: D1 })] });
    const d2 = decision({
      id: 'd2',
      decidedAt: T0 + 3 * HOUR,
      effect: 'deny',
      reasons: ['no signature by release'],
      images: [
        image({
          image: 'registry.example/team-a/app:v2',
          reference: 'registry.example/team-a/app:v2',
          digest: D2,
          verdict: 'deny',
          reason: 'NO_SIGNATURES',
        }),
      ],
    });

    beforeEach(async () => {
      await record((store) => store.write({ signatures: [s1, s2], decisions: [d1, d2], admitted: [] }));
    });

    const parsed = (out: string): { signatures: unknown[]; decisions: unknown[] } =>
      JSON.parse(out) as { signatures: unknown[]; decisions: unknown[] };

    it('prints {signatures, decisions} as JSON, newest first, records whole', async () => {
      const { code, out } = await run(ledger, 'ledger', ['--json']);
      expect(code).toBe(EXIT.ok);
      const json = parsed(out);
      expect(Object.keys(json)).toEqual(['signatures', 'decisions']);
      // The records as written (JSON drops undefined fields).
      expect(json.signatures).toEqual([JSON.parse(JSON.stringify(s2)), JSON.parse(JSON.stringify(s1))]);
      expect(json.decisions).toEqual([JSON.parse(JSON.stringify(d2)), JSON.parse(JSON.stringify(d1))]);
    });

    it('applies the filters', async () => {
      const byDigest = parsed((await run(ledger, 'ledger', ['--json', '--digest', D1])).out);
      expect(byDigest.signatures).toMatchObject([{ id: 's1' }]);
      expect(byDigest.decisions).toMatchObject([{ id: 'd1' }]);

      const byTag = parsed(
        (await run(ledger, 'ledger', ['--json', '--image', 'registry.example/team-a/app:v2'])).out,
      );
      expect(byTag.signatures).toMatchObject([{ id: 's2' }]);
      expect(byTag.decisions).toMatchObject([{ id: 'd2' }]);

      // Decisions have no witness: --witness selects signatures only.
      const byWitness = parsed((await run(ledger, 'ledger', ['--json', '--witness', 'release'])).out);
      expect(byWitness).toEqual({ signatures: [JSON.parse(JSON.stringify(s1))], decisions: [] });

      const since = new Date(T0 + HOUR).toISOString();
      const until = new Date(T0 + 3 * HOUR).toISOString();
      const inRange = parsed(
        (await run(ledger, 'ledger', ['--json', '--since', since, '--until', until])).out,
      );
      expect(inRange.signatures).toMatchObject([{ id: 's2' }]);
      expect(inRange.decisions).toMatchObject([{ id: 'd1' }]);

      const limited = parsed((await run(ledger, 'ledger', ['--json', '--limit', '1'])).out);
      expect(limited.signatures).toMatchObject([{ id: 's2' }]);
      expect(limited.decisions).toMatchObject([{ id: 'd2' }]);
    });

    it('lists one kind with --kind, the other empty', async () => {
      const signaturesOnly = parsed((await run(ledger, 'ledger', ['--json', '--kind', 'signatures'])).out);
      expect(signaturesOnly.signatures).toHaveLength(2);
      expect(signaturesOnly.decisions).toEqual([]);
      const decisionsOnly = parsed((await run(ledger, 'ledger', ['--json', '--kind', 'decisions'])).out);
      expect(decisionsOnly.signatures).toEqual([]);
      expect(decisionsOnly.decisions).toHaveLength(2);
    });

    it('prints the tables without --json', async () => {
      const { code, out } = await run(ledger, 'ledger', ['--kind', 'all']);
      expect(code).toBe(EXIT.ok);
      expect(out).toBe(ledgerText([s2, s1], [d2, d1], 'all'));
      expect(out).toContain(`registry.example/team-a/app:v2@${D2}`);
      expect(out).toContain('deny NO_SIGNATURES');
    });
  });

  describe('when the ledger holds findings', () => {
    const open = finding({
      id: 'f1',
      lastFoundAt: T0 + HOUR,
      firstFoundAt: T0,
      namespace: 'team-a',
      cluster: '',
    });
    const resolved = finding({
      id: 'f2',
      digest: D2,
      lastFoundAt: T0,
      firstFoundAt: T0 - HOUR,
      resolvedAt: T0 + 30 * 60_000,
      namespace: '',
      cluster: 'prod',
    });

    beforeEach(async () => {
      await record((store) => store.saveFindings([open, resolved]));
    });

    it('prints the open ones as JSON, times as ISO 8601 and unknown placements as null', async () => {
      const { code, out } = await run(findings, 'findings', ['--json']);
      expect(code).toBe(EXIT.ok);
      expect(JSON.parse(out)).toEqual([
        {
          id: 'f1',
          image: 'registry.example/team-a/app:v1',
          digest: D1,
          namespace: 'team-a',
          cluster: null,
          code: 'NO_SIGNATURES',
          message: 'no signatures',
          policies: ['prod'],
          firstFoundAt: '2026-11-20T10:00:00.000Z',
          lastFoundAt: '2026-11-20T11:00:00.000Z',
          resolvedAt: null,
          lastAdmittedAt: '2026-11-20T10:00:00.000Z',
        },
      ]);
    });

    it('lists the resolved ones too with --all', async () => {
      const json = JSON.parse((await run(findings, 'findings', ['--all', '--json'])).out) as Record<
        string,
        unknown
      >[];
      expect(json.map((f) => f.id)).toEqual(['f1', 'f2']);
      expect(json[1]).toMatchObject({
        namespace: null,
        cluster: 'prod',
        resolvedAt: '2026-11-20T10:30:00.000Z',
      });
    });

    it('prints the table without --json', async () => {
      const { out } = await run(findings, 'findings', []);
      expect(out).toBe(findingsText([open]));
      expect(out).not.toContain('f2:');
    });
  });
});
