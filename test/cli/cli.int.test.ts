/**
 * The built CLI as users run it: scripts/build.mjs bundles cli/main.ts exactly as `npm run build`
 * does (into a directory of this run, so that a build here never rewrites the dist/signet.js
 * another test may be running), and each case runs it with `node` as a child process, with its
 * own environment, exit status and streams.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join, resolve } from 'node:path';
import { version } from '../../package.json';
import { freePort } from '../support/ports';

jest.setTimeout(120_000);

const ROOT = resolve(__dirname, '..', '..');
let bundleDir: string;
let bundle: string;
let dir: string;

interface Exit {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** `node <bundle> ...args`, to its end (or until `until` says the output is enough, then SIGTERM). */
function cli(
  args: readonly string[],
  opts: { env?: NodeJS.ProcessEnv; until?: (stdout: string) => boolean } = {},
): Promise<Exit> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [bundle, ...args], {
      cwd: dir,
      env: opts.env ?? { ...process.env, SIGNET_CONFIG: undefined },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let signalled = false;
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      if (!signalled && opts.until?.(stdout) === true) {
        signalled = true;
        child.kill('SIGTERM');
      }
    });
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('error', fail);
    child.once('close', (code) => {
      clearTimeout(timer);
      done({ code, stdout, stderr });
    });
  });
}

/** A listener holding a loopback port, as another program would. */
async function occupy(): Promise<{ port: number; server: Server }> {
  const port = await freePort();
  // Connections are dropped at once: a socket never read would hold `close` forever.
  const server = createServer((socket) => socket.destroy());
  await new Promise<void>((listening) => server.listen(port, '127.0.0.1', listening));
  return { port, server };
}

/** A config in its own directory (keys and journal land next to it); returns its path. */
async function writeConfig(name: string, registries: string): Promise<string> {
  const home = join(dir, name);
  await mkdir(home, { recursive: true });
  const file = join(home, 'signet.yaml');
  await writeFile(
    file,
    `registries:\n${registries}
witnesses:
  - name: release
    key: file://keys/release.pem
signingRules:
  - name: team-a
    namespaces: [team-a]
    witness: release
    algorithm: ECDSA_SHA_256
`,
  );
  return file;
}

const REMOTE_REGISTRY = '  - host: registry.example.com\n';

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'signet-cli-int-'));
  bundleDir = await mkdtemp(join(ROOT, 'dist', 'cli-test-'));
  bundle = join(bundleDir, 'signet.js');
  const build = await new Promise<Exit>((done) => {
    const child = spawn(process.execPath, [join(ROOT, 'scripts', 'build.mjs'), bundle], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('close', (code) => done({ code, stdout: '', stderr }));
  });
  if (build.code !== 0) throw new Error(`scripts/build.mjs failed: ${build.stderr}`);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
  await rm(bundleDir, { recursive: true, force: true });
});

describe('help and version', () => {
  it('--help prints the commands on stdout and exits 0', async () => {
    const run = await cli(['--help']);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('Usage: signet <command>');
    expect(run.stdout).toContain('config check');
    expect(run.stderr).toBe('');
  });

  it('sign --help explains sign, with its exit codes', async () => {
    const run = await cli(['sign', '--help']);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('signet sign IMAGE [--rule NAME]');
    expect(run.stdout).toMatch(/Exit codes:[\s\S]*\n {2}3 {2}nothing to do/);
  });

  it("--version prints package.json's version", async () => {
    expect(await cli(['--version'])).toEqual({ code: 0, stdout: `${version}\n`, stderr: '' });
  });

  it('an unknown flag exits 2 naming it and the help to read, without a stack trace', async () => {
    const run = await cli(['verify', 'x', '--namspace', 'production']);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('--namspace: is not a flag of `signet verify` (did you mean --namespace?)');
    expect(run.stderr).toContain('see `signet verify --help`');
    expect(run.stderr).not.toMatch(/\n\s+at /);
  });
});

describe('signet serve', () => {
  describe('when its port is taken', () => {
    let busy: { port: number; server: Server };
    beforeAll(async () => {
      busy = await occupy();
    });
    afterAll(async () => {
      await new Promise((closed) => busy.server.close(closed));
    });

    it('exits 2 with PORT_IN_USE naming the address and --port', async () => {
      const config = await writeConfig('busy', REMOTE_REGISTRY);
      const run = await cli(['serve', '--config', config, '--port', String(busy.port)]);
      expect(run.code).toBe(2);
      expect(run.stderr).toContain(`signet: PORT_IN_USE: 127.0.0.1:${busy.port} is already in use`);
      expect(run.stderr).toContain('change --port');
    });

    it("exits 2 with PORT_IN_USE when it is the embedded registry's port", async () => {
      const config = await writeConfig(
        'busy-registry',
        `  - host: 127.0.0.1:${busy.port}\n    embedded: true\n    insecure: true\n`,
      );
      const run = await cli(['serve', '--config', config, '--port', '0']);
      expect(run.code).toBe(2);
      expect(run.stderr).toContain('signet: PORT_IN_USE: embedded registry');
      expect(run.stderr).toContain('address already in use');
    });
  });

  it('exits 2 with REGISTRY_BINARY_MISSING when no registry binary is on PATH, before making keys', async () => {
    const config = await writeConfig(
      'no-binary',
      `  - host: 127.0.0.1:${await freePort()}\n    embedded: true\n    insecure: true\n`,
    );
    // PATH without the directories that hold docker-registry or registry (node runs by its full path).
    const path = (process.env['PATH'] ?? '')
      .split(delimiter)
      .filter((d) => d !== '' && !existsSync(join(d, 'docker-registry')) && !existsSync(join(d, 'registry')))
      .join(delimiter);
    const run = await cli(['serve', '--config', config, '--port', '0'], {
      env: { ...process.env, PATH: path },
    });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(
      'signet: REGISTRY_BINARY_MISSING: registry binary docker-registry or registry not found',
    );
    expect(run.stderr).toContain('apt-get install -y docker-registry');
    expect(existsSync(join(dir, 'no-binary', 'keys'))).toBe(false);
  });

  it('logs JSON lines to stdout when stdout is not a terminal, and exits 0 on SIGTERM', async () => {
    const config = await writeConfig('piped', REMOTE_REGISTRY);
    const run = await cli(['serve', '--config', config, '--port', '0'], {
      until: (stdout) => stdout.includes('"message":"signet listening"'),
    });
    expect(run.code).toBe(0);
    const logs = run.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { level: string; message: string });
    expect(logs.map((l) => l.message)).toEqual(
      expect.arrayContaining(['local key created', 'signet listening', 'shutting down']),
    );
    expect(run.stdout).not.toContain('Next steps');
    expect(run.stderr).toBe('');
  });
});

describe('signet keys export for a KMS witness without AWS credentials', () => {
  it('exits 1 with AWS_CREDENTIALS_MISSING, not KMS_ACCESS_DENIED', async () => {
    const file = join(dir, 'kms.yaml');
    await writeFile(
      file,
      'registries:\n  - host: registry.example.com\nwitnesses:\n  - name: kms\n    key: awskms:///alias/signet-release\n',
    );
    // No credentials anywhere the SDK looks, and no instance metadata service to ask.
    const env: NodeJS.ProcessEnv = {
      PATH: process.env['PATH'],
      HOME: dir,
      AWS_REGION: 'us-east-1',
      AWS_EC2_METADATA_DISABLED: 'true',
      AWS_CONFIG_FILE: join(dir, 'no-aws-config'),
      AWS_SHARED_CREDENTIALS_FILE: join(dir, 'no-aws-credentials'),
    };
    const run = await cli(['keys', 'export', 'kms', '--config', file], { env });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('signet: AWS_CREDENTIALS_MISSING: alias/signet-release');
  });
});
