/**
 * The `signet` CLI in process (`main` with capturing streams): help for every command, the
 * version, usage errors that name the flag and the help to read, exit codes, JSON for scripts and
 * text for a terminal, and config errors located as FILE:LINE. Nothing here touches the network:
 * the images asked about are ones no rule or policy covers, so no registry is contacted.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { portInUse, nextSteps } from '../../cli/commands/serve';
import { main, reportError } from '../../cli/main';
import { COMMANDS, EXIT, TOP_LEVEL_FLAGS } from '../../cli/spec';
import { parseConfig } from '../../lib/config/load';
import { ConfigError, InputError } from '../../lib/core/errors';
import { version } from '../../package.json';

/** A stdout or stderr that keeps what was written; `tty` makes it look like a terminal. */
class Capture extends Writable {
  text = '';
  constructor(readonly isTTY = false) {
    super();
  }
  override _write(chunk: Buffer, _encoding: string, done: () => void): void {
    this.text += chunk.toString();
    done();
  }
}

interface Run {
  readonly code: number;
  readonly out: string;
  readonly err: string;
  /** The error `main` rejected with, when it did (its code is then what bin/signet.js exits with). */
  readonly error: unknown;
}

/** Runs `signet ...argv` as bin/signet.js would: `main`, and `reportError` for what it throws. */
async function signet(argv: readonly string[], opts: { tty?: boolean } = {}): Promise<Run> {
  const out = new Capture(opts.tty ?? false);
  const err = new Capture();
  let error: unknown;
  const code = await main(argv, out, err).catch((thrown: unknown) => {
    error = thrown;
    return reportError(thrown, err);
  });
  return { code, out: out.text, err: err.text, error };
}

const ALL_FLAGS = new Set([
  ...COMMANDS.flatMap((c) => c.flags.map((f) => f.name)),
  ...TOP_LEVEL_FLAGS.map((f) => f.name),
]);
/** Every `--flag` a text mentions. */
const flagsIn = (text: string): string[] =>
  [...text.matchAll(/(?<![\w-])--([a-z][a-z-]*)/g)].map((m) => m[1] as string);

let dir: string;
let config: string;
const DIGEST = `sha256:${createHash('sha256').update('signet').digest('hex')}`;

const CONFIG = `registries:
  - host: 127.0.0.1:5000
    insecure: true
witnesses:
  - name: release
    key: file://keys/release.pem
signingRules:
  - name: team-a
    namespaces: [team-a]
    witness: release
    algorithm: ECDSA_SHA_256
policies:
  - name: production
    enabled: true
    namespaces: [production, staging]
    images: ["127.0.0.1:5000/team-a/**"]
    attestors:
      - count: 1
        witnesses: [release]
`;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'signet-cli-'));
  config = join(dir, 'signet.yaml');
  await writeFile(config, CONFIG);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A config file in the temp dir with `text`; returns its path. */
async function configFile(name: string, text: string): Promise<string> {
  const file = join(dir, name);
  await writeFile(file, text);
  return file;
}

describe('help', () => {
  describe.each(COMMANDS.map((c) => [c.name, c] as const))('signet %s --help', (name, command) => {
    let help: Run;
    beforeAll(async () => {
      help = await signet([...name.split(' '), '--help']);
    });

    it('exits 0 and prints the synopsis, every flag, an example and the exit codes', () => {
      expect(help.code).toBe(EXIT.ok);
      expect(help.out).toContain(`signet ${command.usage[0] ?? ''}`);
      for (const flag of command.flags) expect(help.out).toContain(`--${flag.name}`);
      expect(help.out).toContain('Examples:');
      expect(help.out).toContain(command.examples[0]);
      expect(help.out).toMatch(/Exit codes:\n {2}0 /);
    });

    it('is what `signet help` prints for it', async () => {
      expect((await signet(['help', ...name.split(' ')])).out).toBe(help.out);
    });

    it('names only flags that exist', () => {
      expect(flagsIn(help.out).filter((flag) => !ALL_FLAGS.has(flag))).toEqual([]);
    });
  });

  it('lists every command and the shared exit codes with --help', async () => {
    const { code, out } = await signet(['--help']);
    expect(code).toBe(EXIT.ok);
    for (const command of COMMANDS) expect(out).toContain(command.name);
    expect(out).toMatch(/3 {2}nothing to do/);
  });

  it('prints the command list on stderr and exits 2 when no command is given', async () => {
    const { code, out, err } = await signet([]);
    expect([code, out]).toEqual([EXIT.usage, '']);
    expect(err).toContain('Usage: signet <command>');
  });

  it('lists the subcommands of a group (signet keys --help)', async () => {
    const { code, out } = await signet(['keys', '--help']);
    expect(code).toBe(EXIT.ok);
    expect(out).toContain('keys generate');
    expect(out).toContain('keys export');
  });

  it('refuses help about a command that does not exist', async () => {
    const run = await signet(['help', 'sing']);
    expect(run.code).toBe(EXIT.usage);
    expect(run.err).toContain('did you mean "sign"');
  });
});

describe('signet --version', () => {
  it("prints package.json's version", async () => {
    expect(await signet(['--version'])).toMatchObject({ code: EXIT.ok, out: `${version}\n` });
  });
});

describe('usage errors', () => {
  it.each([
    [['sign', 'x', '--bogus'], '--bogus', 'is not a flag of `signet sign`'],
    [['verify', 'x', '--namspace', 'p'], '--namspace', 'did you mean --namespace?'],
    [['sign', 'x', '--queue', 'u'], '--queue', 'it is a flag of signet replay'],
    [['sign', 'x', '--rule'], '--rule', 'needs a value: --rule NAME'],
    [['sign', 'x', '--config', '--json'], '--config', 'got the flag "--json"'],
    [['failures', '--json=yes'], '--json', 'takes no value'],
    [['sign'], 'IMAGE', 'is required'],
    [['sign', 'a', 'b'], 'sign', 'got an extra "b"'],
    [['failures', '--log-level', 'loud'], '--log-level', 'must be one of debug, info, warn, error, silent'],
    [['keys', 'generate', '--force'], '--force', 'goes with --out FILE'],
    [['replay', '--local', '--max', '3'], '--max', 'this flag is for --queue'],
    [
      ['replay', '--id', 'x', '--queue', 'https://sqs.us-east-1.amazonaws.com/1/q'],
      '--id',
      'use it with --local',
    ],
    [['serve', '--port', 'eighty'], '--port', 'must be an integer'],
    [['keys', 'genrate'], 'keys', 'did you mean "generate"'],
    [['verfy', 'x'], 'command', 'did you mean "verify"'],
  ])('%j is refused naming %s, with a pointer to the help, and exits 2', async (argv, field, says) => {
    const run = await signet([...argv, '--config', config]);
    expect(run.error).toBeInstanceOf(InputError);
    expect(run.error).toMatchObject({ code: 'REQUEST_INVALID', field });
    expect(run.code).toBe(EXIT.usage);
    expect(run.err).toContain(says);
    expect(run.err).toMatch(/see `signet [a-z ]*--help`/);
    expect(flagsIn(run.err).filter((flag) => !ALL_FLAGS.has(flag) && flag !== field.slice(2))).toEqual([]);
  });

  it('never shows Node.js parseArgs messages', async () => {
    const run = await signet(['sign', '-x', 'image']);
    expect(run.err).not.toMatch(/ERR_PARSE_ARGS|To specify a positional argument/);
    expect(run.error).toMatchObject({ field: '-x' });
  });

  it('takes flags before the command', async () => {
    const run = await signet(['--config', config, 'failures', '--json']);
    expect([run.code, JSON.parse(run.out)]).toEqual([EXIT.ok, []]);
  });
});

describe('signet sign', () => {
  const uncovered = `127.0.0.1:5000/team-z/app@${DIGEST}`;

  it('exits 3 (nothing to do) for an image no rule covers, and says so', async () => {
    const run = await signet(['sign', uncovered, '--config', config, '--log-level', 'silent'], { tty: true });
    expect(run.code).toBe(EXIT.nothingToDo);
    expect(run.out).toBe(`nothing to do for ${uncovered}: no signing rule covers this repository\n`);
  });

  it('prints the report as JSON when stdout is not a terminal', async () => {
    const run = await signet(['sign', uncovered, '--config', config, '--log-level', 'silent']);
    expect(run.code).toBe(EXIT.nothingToDo);
    expect(JSON.parse(run.out)).toMatchObject({
      image: uncovered,
      skipped: expect.any(String),
      outcomes: [],
    });
  });

  it("logs JSON lines on the process's stderr, not among the results", async () => {
    const logged: string[] = [];
    const spy = jest.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      logged.push(String(chunk));
      return true;
    });
    let run: Run;
    try {
      run = await signet(['sign', uncovered, '--config', config, '--log-level', 'debug']);
    } finally {
      spy.mockRestore();
    }
    const lines = logged.map((line) => JSON.parse(line) as { level: string; message: string });
    expect(lines).toContainEqual(expect.objectContaining({ level: 'debug', message: 'push skipped' }));
    expect(JSON.parse(run.out)).toMatchObject({ image: uncovered });
    expect(run.err).toBe('');
  });

  it('exits 2 for a rule that does not exist', async () => {
    const run = await signet([
      'sign',
      uncovered,
      '--rule',
      'nope',
      '--config',
      config,
      '--log-level',
      'silent',
    ]);
    expect(run.code).toBe(EXIT.usage);
    expect(run.error).toBeInstanceOf(ConfigError);
    expect(run.err).toContain('RULE_UNKNOWN');
  });
});

describe('signet verify', () => {
  const covered = '127.0.0.1:5000/team-a/app:v1';
  const verify = (args: readonly string[], tty = false) =>
    signet(['verify', ...args, '--config', config, '--log-level', 'silent'], { tty });

  describe('without --namespace, for an image policies cover in other namespaces', () => {
    it('denies, exits 1 and names the namespaces to pass', async () => {
      const run = await verify([covered]);
      expect(run.code).toBe(EXIT.failed);
      expect(JSON.parse(run.out)).toMatchObject({
        image: covered,
        allowed: false,
        reason: { code: 'NO_MATCHING_POLICY' },
        hint: 'the policies covering 127.0.0.1:5000/team-a/app select namespaces: production, staging; pass --namespace',
      });
    });

    it('shows the decision and the hint as text on a terminal', async () => {
      const run = await verify([covered], true);
      expect(run.out).toMatch(new RegExp(`^DENIED {2}${covered}\n`));
      expect(run.out).toContain('reason     NO_MATCHING_POLICY');
      expect(run.out).toContain(
        'hint       the policies covering 127.0.0.1:5000/team-a/app select namespaces: production, staging',
      );
      expect(() => JSON.parse(run.out) as unknown).toThrow();
    });

    it('prints JSON on a terminal with --json', async () => {
      const run = await verify([covered, '--json'], true);
      expect(JSON.parse(run.out)).toMatchObject({ image: covered, allowed: false });
    });
  });

  it('gives no hint for an image no policy covers anywhere', async () => {
    const run = await verify(['127.0.0.1:5000/team-z/app:v1']);
    expect(JSON.parse(run.out)).not.toHaveProperty('hint');
  });

  describe('with several images', () => {
    let warnConfig: string;
    beforeAll(async () => {
      warnConfig = await configFile('warn.yaml', `${CONFIG}admission:\n  noMatchingPolicy: warn\n`);
    });

    it('decides every one, in argument order, and exits 1 when any is denied', async () => {
      const run = await signet([
        'verify',
        'docker.io/library/nginx:1',
        'NOT A REFERENCE',
        '--config',
        warnConfig,
      ]);
      expect(run.code).toBe(EXIT.failed);
      const decisions = JSON.parse(run.out) as { image: string; allowed: boolean; verdict: string }[];
      expect(decisions.map((d) => [d.image, d.allowed, d.verdict])).toEqual([
        ['docker.io/library/nginx:1', true, 'warn'],
        ['NOT A REFERENCE', false, 'deny'],
      ]);
    });

    it('exits 0 when every one is admitted', async () => {
      const run = await signet([
        'verify',
        'docker.io/library/nginx:1',
        'quay.io/x/y:2',
        '--config',
        warnConfig,
      ]);
      expect(run.code).toBe(EXIT.ok);
      expect(JSON.parse(run.out)).toHaveLength(2);
    });
  });
});

describe('signet failures and replay --local without a journal', () => {
  it('failures lists none as a table, or [] with --json, and exits 0', async () => {
    expect(await signet(['failures', '--config', config])).toMatchObject({
      code: EXIT.ok,
      out: 'no dead letters\n',
    });
    const json = await signet(['failures', '--json', '--config', config]);
    expect([json.code, JSON.parse(json.out)]).toEqual([EXIT.ok, []]);
  });

  it('replay --local exits 3 (nothing to do)', async () => {
    const run = await signet(['replay', '--local', '--config', config]);
    expect(run.code).toBe(EXIT.nothingToDo);
    expect(JSON.parse(run.out)).toMatchObject({ requeued: [] });
    const tty = await signet(['replay', '--local', '--config', config], { tty: true });
    expect(tty.out).toBe('nothing to do: no dead letters to replay\n');
  });
});

describe('configuration errors', () => {
  const BROKEN = `registries:
  - host: 127.0.0.1:5000
witnesses:
  - name: release
    key: file://keys/release.pem
signingRules:
  - name: team-a
    namespaces: [team-a]
    witnes: release
    algorithm: ECDSA_SHA_256
`;

  it('config check prints each problem as FILE:LINE: path: message and exits 2', async () => {
    const file = await configFile('broken.yaml', BROKEN);
    const run = await signet(['config', 'check', file]);
    expect(run.code).toBe(EXIT.usage);
    expect(run.err).toContain(
      `${file}:9: signingRules[0].witnes: unknown key "witnes"; did you mean "witness"?\n`,
    );
    expect(run.err).toContain(`${file}:7: signingRules[0].witness: is required\n`);
  });

  it('config check --json gives the issues with their lines', async () => {
    const file = await configFile('broken.yaml', BROKEN);
    const run = await signet(['config', 'check', file, '--json']);
    expect(run.code).toBe(EXIT.usage);
    expect(JSON.parse(run.out)).toMatchObject({
      valid: false,
      issues: expect.arrayContaining([
        { path: 'signingRules[0].witnes', message: expect.any(String), line: 9 },
      ]),
    });
  });

  it('any other command reports them the same way (FILE:LINE) and exits 2', async () => {
    const file = await configFile('broken.yaml', BROKEN);
    const run = await signet(['failures', '--config', file]);
    expect(run.error).toBeInstanceOf(ConfigError);
    expect(run.code).toBe(EXIT.usage);
    expect(run.err).toContain(`signet: CONFIG_INVALID: ${file} is invalid (2 problems)\n`);
    expect(run.err).toContain(`${file}:9: signingRules[0].witnes:`);
  });

  it('locates a YAML syntax error by line and column', async () => {
    const file = await configFile('syntax.yaml', 'registries:\n  - host: [unclosed\n');
    const run = await signet(['config', 'check', file]);
    expect(run.code).toBe(EXIT.usage);
    expect(run.err).toMatch(new RegExp(`${file.replace(/[.]/g, '\\.')}:\\d+:\\d+: \\(yaml\\): `));
  });

  it('config check of a valid config prints OK and exits 0; --json says valid', async () => {
    const run = await signet(['config', 'check', config, '--log-level', 'silent']);
    expect(run.code).toBe(EXIT.ok);
    expect(run.out).toBe(`${config}: OK (1 registries, 1 witnesses, 1 signing rules, 1 policies)\n`);
    const json = await signet(['config', 'check', config, '--json', '--log-level', 'silent']);
    expect(JSON.parse(json.out)).toMatchObject({ valid: true, issues: [], summary: { policies: 1 } });
  });
});

describe('signet keys generate --out', () => {
  it('refuses to replace a key unless --force, naming the flag', async () => {
    const out = join(dir, 'one.pem');
    expect((await signet(['keys', 'generate', '--out', out])).code).toBe(EXIT.ok);
    const first = await readFile(out, 'utf8');
    const again = await signet(['keys', 'generate', '--out', out]);
    expect(again.code).toBe(EXIT.usage);
    expect(again.error).toMatchObject({ code: 'REQUEST_INVALID', field: '--out' });
    expect(again.err).toContain('pass --force to replace it');
    const forced = await signet(['keys', 'generate', '--out', out, '--force', '--json']);
    expect(forced.code).toBe(EXIT.ok);
    expect(JSON.parse(forced.out)).toMatchObject({
      path: out,
      spec: 'ec-p256',
      keyId: expect.stringMatching(/^sha256:/),
    });
    expect(await readFile(out, 'utf8')).not.toBe(first);
  });
});

describe('signet serve', () => {
  it('turns EADDRINUSE into PORT_IN_USE naming the address and the setting to change', () => {
    const busy = Object.assign(new Error('listen EADDRINUSE'), {
      code: 'EADDRINUSE',
      address: '127.0.0.1',
      port: 8080,
    });
    const error = portInUse(busy, '--port');
    expect(error).toBeInstanceOf(ConfigError);
    expect(error).toMatchObject({ code: 'PORT_IN_USE', cause: busy });
    expect(error?.message).toContain('127.0.0.1:8080 is already in use');
    expect(error?.message).toContain('--port');
    expect(portInUse(new Error('other'), '--port')).toBeUndefined();
  });

  it('prints next steps: the registry, a push command, the keys and how to export the public key', () => {
    const parsed = parseConfig(CONFIG.replace('insecure: true', 'insecure: true\n    embedded: true'), {
      baseDir: dir,
    });
    const text = nextSteps(parsed, { url: 'http://127.0.0.1:8080', configPath: config, cli: 'signet' });
    expect(text).toContain('Signet is listening on http://127.0.0.1:8080');
    expect(text).toMatch(/registry +127\.0\.0\.1:5000 \(embedded/);
    expect(text).toContain(
      'skopeo copy --dest-tls-verify=false docker-archive:app.tar docker://127.0.0.1:5000/team-a/app:v1',
    );
    expect(text).toContain(`release: ${join(dir, 'keys', 'release.pem')}`);
    expect(text).toContain(`signet keys export release --config ${config} > release.pub`);
    expect(text).toContain(
      `signet verify 127.0.0.1:5000/team-a/app:v1 --namespace production --config ${config}`,
    );
    expect(flagsIn(text).filter((flag) => !ALL_FLAGS.has(flag) && flag !== 'dest-tls-verify')).toEqual([]);
  });
});
