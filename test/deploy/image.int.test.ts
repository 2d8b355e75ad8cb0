/**
 * The image's build stage, emulated without Docker: `npm run build` in a directory holding only what
 * the Dockerfile's build stage copies from the context (and this checkout's node_modules), then the
 * entry the image starts, `node bin/signet.js`, run from there. A source the bundle needs but the
 * Dockerfile does not copy fails the build here as it would in `docker build`.
 */
import { spawnSync } from 'node:child_process';
import { builtinModules } from 'node:module';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { parseDockerfile } from './dockerfile';

const ROOT = path.resolve(__dirname, '..', '..');
const stages = parseDockerfile(readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8'));
const packageJson = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
  version: string;
  bin: Record<string, string>;
  dependencies: Record<string, string>;
};

/** The context paths the build stage copies (`COPY <src>... <dest>` without `--from`). */
const buildInputs = (stages.find((s) => s.name === 'build')?.instructions ?? [])
  .filter((i) => i.keyword === 'COPY' && !i.args.startsWith('--'))
  .flatMap((i) => i.args.split(/\s+/).slice(0, -1));

describe('the image build stage, emulated', () => {
  let dir: string;
  let build: ReturnType<typeof spawnSync>;

  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'signet-image-'));
    for (const input of buildInputs)
      cpSync(path.join(ROOT, input), path.join(dir, input), { recursive: true });
    // The runtime stage's bin/ comes from the context too.
    cpSync(path.join(ROOT, 'bin'), path.join(dir, 'bin'), { recursive: true });
    symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
    build = spawnSync('npm', ['run', 'build'], { cwd: dir, encoding: 'utf8', timeout: 120_000 });
  });

  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('`npm run build` succeeds with only the copied sources', () => {
    expect({ status: build.status, stderr: build.stderr }).toEqual({ status: 0, stderr: expect.any(String) });
    expect(existsSync(path.join(dir, 'dist', 'signet.js'))).toBe(true);
  });

  it('produces the bundle that bin/signet.js, the ENTRYPOINT, loads: the CLI runs', () => {
    const run = spawnSync(process.execPath, [path.join(dir, packageJson.bin.signet as string), '--version'], {
      cwd: dir,
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect({ status: run.status, stdout: run.stdout.trim() }).toEqual({
      status: 0,
      stdout: packageJson.version,
    });
    const help = spawnSync(
      process.execPath,
      [path.join(dir, packageJson.bin.signet as string), 'serve', '--help'],
      {
        cwd: dir,
        encoding: 'utf8',
        timeout: 30_000,
      },
    );
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('--config');
  });

  it('needs only Node.js built-ins and `dependencies` at run time, so `npm ci --omit=dev` suffices', () => {
    const bundle = readFileSync(path.join(dir, 'dist', 'signet.js'), 'utf8');
    const required = [...new Set([...bundle.matchAll(/\brequire\("([^"]+)"\)/g)].map((m) => m[1] as string))];
    const builtins = new Set(builtinModules);
    const packageOf = (specifier: string): string =>
      specifier.startsWith('@')
        ? specifier.split('/').slice(0, 2).join('/')
        : (specifier.split('/')[0] as string);
    const outside = required
      .filter((r) => !r.startsWith('node:') && !builtins.has(r))
      .map(packageOf)
      .filter((p) => packageJson.dependencies[p] === undefined);
    expect(required).toContain('better-sqlite3');
    expect(outside).toEqual([]);
  });
});
