/**
 * `signet sign --all` as users run it: the bundled CLI (scripts/build.mjs, into a directory of this
 * run) as a child process, against a real distribution registry behind a fault proxy (the config
 * names the proxy as the registry; images are pushed to the registry directly).
 *
 * 300 images in 3 repositories, 20% of them signed by both witnesses beforehand, are backfilled
 * while 20% of the registry requests fail (429, 503, resets before and after the registry did
 * the work): every image ends signed exactly once per witness. Then a run over other images is
 * killed (SIGKILL) halfway: what it wrote is whole, and a second run finishes the rest, each image
 * signed exactly once. A last run over everything signs nothing new. Every `.sig` manifest is
 * checked with plain fetch and node:crypto (test/support/oci-http.ts).
 */
import { spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { writeCosignSignature } from '../support/cosign-writer';
import { startFaultProxy, type FaultKind, type FaultProxy } from '../support/fault-proxy';
import { main } from '../../cli/main';
import { pushImages } from '../reliability/harness';
import { checkSignatures, type TrustedKey } from '../support/oci-http';
import { startTestRegistry, type TestRegistry } from '../support/registry';

jest.setTimeout(120_000);

const ROOT = resolve(__dirname, '..', '..');
const FAULT_KINDS: readonly FaultKind[] = ['429', '503', 'reset', 'reset-after'];
const REPOSITORIES = ['backfill/api', 'backfill/web', 'backfill/worker'];
const PER_REPOSITORY = 100;
const KILLED_REPOSITORIES = ['killed/a', 'killed/b', 'killed/c'];
const KILLED_PER_REPOSITORY = 20;

const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const TRUSTED: readonly TrustedKey[] = [
  { witness: 'release-ec', publicKey: ec.publicKey, algorithm: 'ECDSA_SHA_256' },
  { witness: 'release-rsa', publicKey: rsa.publicKey, algorithm: 'RSASSA_PKCS1_V1_5_SHA_256' },
];

interface Image {
  readonly repository: string;
  readonly tag: string;
  readonly digest: string;
}

interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** A `--json` line of `signet sign --all`. */
interface Line {
  readonly type: 'image' | 'summary';
  readonly image?: string;
  readonly status?: string;
  readonly errorCode?: string;
  readonly counts?: Record<string, number>;
  readonly total?: number;
  readonly done?: number;
  readonly interrupted?: boolean;
}

let dir: string;
let bundleDir: string;
let bundle: string;
let config: string;
let registry: TestRegistry;
let proxy: FaultProxy;
let images: Image[];
let killedImages: Image[];

/** `node <bundle> ...args`; `killWhen` sees each stdout line and SIGKILLs the child when it says so. */
function cli(args: readonly string[], killWhen?: (lines: readonly Line[]) => boolean): Promise<Exit> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [bundle, ...args], {
      cwd: dir,
      env: { ...process.env, SIGNET_CONFIG: undefined },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let killed = false;
    const timer = setTimeout(() => child.kill('SIGKILL'), 100_000);
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      if (!killed && killWhen?.(linesOf(stdout)) === true) {
        killed = true;
        child.kill('SIGKILL');
      }
    });
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('error', fail);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      done({ code, signal, stdout, stderr });
    });
  });
}

/** The whole JSON lines of `stdout` (a killed run may end mid-line). */
function linesOf(stdout: string): Line[] {
  return stdout
    .split('\n')
    .slice(0, -1)
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Line);
}

const summaryOf = (exit: Exit): Line | undefined => linesOf(exit.stdout).find((l) => l.type === 'summary');

/** Runs `op` over `items`, `limit` at a time. */
async function inPool<T, R>(items: readonly T[], limit: number, op: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      for (let i = next++; i < items.length; i = next++) results[i] = await op(items[i] as T);
    }),
  );
  return results;
}

/** Pushes `perRepository` tagged images into each repository (the harness's way, first images first). */
function pushAll(repositories: readonly string[], perRepository: number): Promise<Image[]> {
  return pushImages(
    registry.url,
    repositories.flatMap((repository) =>
      Array.from({ length: perRepository }, (_, i) => ({
        repository,
        tag: `v${i}`,
        seed: `${repository}:v${i}`,
      })),
    ),
  );
}

/** Per image, valid signatures by witness; throws on anything an independent verifier would refuse. */
async function audit(list: readonly Image[]): Promise<Map<string, Map<string, number>>> {
  const checks = await inPool(list, 16, async (image) => ({
    image,
    check: await checkSignatures(registry.url, image.repository, image.digest, TRUSTED),
  }));
  const problems = checks.flatMap(({ image, check }) =>
    check.problems.map((p) => `${image.repository}@${image.digest}: ${p}`),
  );
  expect(problems).toEqual([]);
  return new Map(checks.map(({ image, check }) => [image.digest, new Map(check.byWitness)]));
}

/** The images whose witnesses each signed exactly once (`exactly`), and the rest. */
function tally(signatures: Map<string, Map<string, number>>): {
  once: number;
  none: number;
  other: string[];
} {
  let once = 0;
  let none = 0;
  const other: string[] = [];
  for (const [digest, byWitness] of signatures) {
    const counts = TRUSTED.map((k) => byWitness.get(k.witness) ?? 0);
    if (counts.every((n) => n === 1)) once++;
    else if (counts.every((n) => n === 0)) none++;
    else other.push(`${digest}: ${counts.join('/')}`);
  }
  return { once, none, other };
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'signet-backfill-int-'));
  bundleDir = await mkdtemp(join(ROOT, 'dist', 'cli-test-'));
  bundle = join(bundleDir, 'signet.js');
  const build = await new Promise<Exit>((done) => {
    const child = spawn(process.execPath, [join(ROOT, 'scripts', 'build.mjs'), bundle], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('close', (code, signal) => done({ code, signal, stdout: '', stderr }));
  });
  if (build.code !== 0) throw new Error(`scripts/build.mjs failed: ${build.stderr}`);

  registry = await startTestRegistry();
  proxy = await startFaultProxy(registry.host, { seed: 12, faultKinds: FAULT_KINDS });
  await mkdir(join(dir, 'keys'));
  await writeFile(
    join(dir, 'keys', 'release-ec.pem'),
    ec.privateKey.export({ type: 'pkcs8', format: 'pem' }),
  );
  await writeFile(
    join(dir, 'keys', 'release-rsa.pem'),
    rsa.privateKey.export({ type: 'pkcs8', format: 'pem' }),
  );
  config = join(dir, 'signet.yaml');
  await writeFile(
    config,
    `registries:
  - host: ${proxy.host}
    insecure: true
witnesses:
  - name: release-ec
    key: file://keys/release-ec.pem
  - name: release-rsa
    key: file://keys/release-rsa.pem
signingRules:
  - name: by-tag
    namespaces: [backfill, killed]
    witness: release-ec
    algorithm: ECDSA_SHA_256
  - name: by-digest
    namespaces: [backfill, killed]
    witness: release-rsa
    algorithm: RSASSA_PKCS1_V1_5_SHA_256
    signatureType: simple
`,
  );
  images = await pushAll(REPOSITORIES, PER_REPOSITORY);
  killedImages = await pushAll(KILLED_REPOSITORIES, KILLED_PER_REPOSITORY);
  // One image in five is signed already, by both witnesses, as cosign would have signed it.
  await inPool(
    images.filter((_, i) => i % 5 === 0),
    8,
    async ({ repository, tag, digest }) => {
      const at = { registryUrl: registry.url, repository, digest, identityHost: proxy.host };
      await writeCosignSignature({ ...at, key: ec.privateKey, tag });
      await writeCosignSignature({ ...at, key: rsa.privateKey });
    },
  );
}, 120_000);

afterAll(async () => {
  await proxy?.close();
  await registry?.stop();
  await rm(dir, { recursive: true, force: true });
  await rm(bundleDir, { recursive: true, force: true });
});

describe('signet sign --all, while one registry request in five fails', () => {
  let run: Exit;
  beforeAll(async () => {
    proxy.faultRate = 0.2;
    run = await cli(['sign', '--all', `${proxy.host}/backfill`, '--config', config, '--concurrency', '16']);
    proxy.faultRate = 0;
  });

  it('exits 0 with one JSON line per image, then the summary', () => {
    // Attempts the faults broke are logged (and attempted again); the run itself succeeds.
    expect(run.code).toBe(0);
    const lines = linesOf(run.stdout);
    expect(lines.filter((l) => l.type === 'image')).toHaveLength(images.length);
    expect(lines[lines.length - 1]).toMatchObject({
      type: 'summary',
      total: images.length,
      done: images.length,
      interrupted: false,
      counts: { signed: 240, 'already-signed': 60, failed: 0, 'not-signed': 0, 'would-sign': 0 },
    });
    expect(proxy.injectedTotal()).toBeGreaterThan(100);
  });

  it('leaves every image signed exactly once by each witness, each signature valid', async () => {
    const result = tally(await audit(images));
    expect(result).toEqual({ once: images.length, none: 0, other: [] });
  });
});

describe('a run killed halfway', () => {
  let killed: Exit;
  let reported: Line[];
  beforeAll(async () => {
    killed = await cli(
      ['sign', '--all', `${proxy.host}/killed`, '--config', config, '--concurrency', '4'],
      (lines) => lines.filter((l) => l.type === 'image').length >= killedImages.length / 3,
    );
    reported = linesOf(killed.stdout).filter((l) => l.type === 'image');
  });

  it('was killed before it finished', () => {
    expect(killed.signal).toBe('SIGKILL');
    expect(summaryOf(killed)).toBeUndefined();
    expect(reported.length).toBeLessThan(killedImages.length);
  });

  it('left whole signatures only: each image signed once by a witness, or not yet', async () => {
    const signatures = await audit(killedImages);
    for (const byWitness of signatures.values()) {
      for (const { witness } of TRUSTED) expect(byWitness.get(witness) ?? 0).toBeLessThanOrEqual(1);
    }
    const { once } = tally(signatures);
    expect(once).toBeGreaterThanOrEqual(reported.filter((l) => l.status === 'signed').length);
    expect(once).toBeLessThan(killedImages.length);
  });

  describe('and run again', () => {
    let again: Exit;
    beforeAll(async () => {
      again = await cli(['sign', '--all', `${proxy.host}/killed`, '--config', config]);
    });

    it('signs the rest, skipping what the killed run signed', () => {
      expect(again.code).toBe(0);
      const summary = summaryOf(again);
      expect(summary).toMatchObject({ total: killedImages.length, done: killedImages.length });
      expect(summary?.counts?.['already-signed']).toBeGreaterThanOrEqual(
        reported.filter((l) => l.status === 'signed').length,
      );
      expect((summary?.counts?.['signed'] ?? 0) + (summary?.counts?.['already-signed'] ?? 0)).toBe(
        killedImages.length,
      );
    });

    it('leaves every image signed exactly once by each witness', async () => {
      expect(tally(await audit(killedImages))).toEqual({ once: killedImages.length, none: 0, other: [] });
    });
  });
});

describe('a second run over everything', () => {
  it('signs nothing new and writes nothing', async () => {
    const requestsBefore = proxy.requests.length;
    const run = await cli(['sign', '--all', proxy.host, '--config', config]);
    expect(run.code).toBe(0);
    expect(summaryOf(run)).toMatchObject({
      total: images.length + killedImages.length,
      counts: { signed: 0, 'already-signed': images.length + killedImages.length, failed: 0 },
    });
    const writes = proxy.requests
      .slice(requestsBefore)
      .filter((r) => r.method !== 'GET' && r.method !== 'HEAD');
    expect(writes).toEqual([]);
  });

  it('with --dry-run on a pattern nothing is under, has nothing to do (exit 3)', async () => {
    const run = await cli(['sign', '--all', `${proxy.host}/nobody`, '--config', config, '--dry-run']);
    expect(run.code).toBe(3);
    expect(summaryOf(run)).toMatchObject({ total: 0, dryRun: true });
  });

  it('refuses a pattern outside registries[] (exit 2), naming --all', async () => {
    const run = await cli(['sign', '--all', 'registry.example.com/team-a', '--config', config]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('signet: REQUEST_INVALID: --all:');
    expect(run.stderr).toContain('see `signet sign --help`');
  });
});

describe('on a terminal (the CLI in process, its streams terminals)', () => {
  /** A terminal stream that keeps what was written; `onWrite` sees each chunk. */
  class Terminal {
    readonly isTTY = true;
    text = '';
    constructor(private readonly onWrite: (chunk: string) => void = () => undefined) {}
    write(chunk: string): boolean {
      this.text += chunk;
      this.onWrite(chunk);
      return true;
    }
  }

  let late: Image[];
  beforeAll(async () => {
    late = await pushAll(['killed/late'], 12);
  });

  it('--dry-run draws the progress on stderr, then counts and the images it would sign', async () => {
    const out = new Terminal();
    const err = new Terminal();
    const code = await main(
      ['sign', '--all', `${proxy.host}/killed/late`, '--dry-run', '--config', config],
      out,
      err,
    );
    expect(code).toBe(0);
    expect(err.text).toContain('\r\x1b[2K[');
    expect(err.text).toContain(`${late.length}/${late.length}  100%`);
    expect(out.text).toContain(
      `${late.length} images in 1 repositories under ${proxy.host}/killed/late (dry run)`,
    );
    expect(out.text).toMatch(/\nwould-sign {2,}12\n/);
    expect(out.text).toContain(`WOULD SIGN`);
    expect(out.text).toContain(`${proxy.host}/killed/late@${late[0]?.digest ?? ''}  by-tag (v0), by-digest`);
    expect(tally(await audit(late))).toMatchObject({ none: late.length });
  });

  it('Ctrl-C finishes the images in flight, says it was interrupted and exits 1', async () => {
    const out = new Terminal();
    let interrupted = false;
    const err = new Terminal((chunk) => {
      // The first image done: Ctrl-C.
      if (!interrupted && /\] {2}[1-9]\d*\/12/.test(chunk)) {
        interrupted = true;
        process.emit('SIGINT');
      }
    });
    const code = await main(
      ['sign', '--all', `${proxy.host}/killed/late`, '--concurrency', '2', '--config', config],
      out,
      err,
    );
    expect(code).toBe(1);
    expect(err.text).toContain('interrupted: finishing the images in flight');
    expect(out.text).toMatch(
      /^interrupted after \d+ of 12 images under .*; \d+ not started \(run it again to resume\)/,
    );
    const { once, none, other } = tally(await audit(late));
    expect(other).toEqual([]);
    expect(once).toBeGreaterThan(0);
    expect(none).toBeGreaterThan(0);
    expect(process.listenerCount('SIGINT')).toBe(0);
  });
});
