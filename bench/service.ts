/**
 * Signet's local service as users run it: `signet serve` from the esbuild bundle of the CLI
 * (built here exactly as scripts/build.mjs builds dist/signet.js, so the figures are those of the
 * current sources), in its own process, logging at the default level to a file. Its own process
 * keeps the load generator and the floors off its event loop and makes its RSS its own.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { sleep } from '../lib/core/retry';
import { freePort } from '../test/support/ports';

/** A running `signet serve`. */
export interface ServiceProcess {
  readonly url: string;
  readonly pid: number;
  /** Resolves when the process has exited, with its exit code or the signal that ended it. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Sends `signal` (a crash test sends SIGKILL) and resolves once the process has exited. */
  kill(signal: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resident set now and its high-water mark since the process started (Linux /proc), bytes. */
  memory(): Promise<{ rss: number; peakRss: number }>;
  /** Resets the high-water mark (`echo 5 > /proc/<pid>/clear_refs`). */
  resetPeak(): Promise<void>;
  stop(): Promise<void>;
}

const ROOT = join(__dirname, '..');

/**
 * How to run the CLI straight from its sources (`node -r @swc-node/register cli/main.ts`), for
 * tests that need `signet serve` in a process of its own without building a bundle first.
 */
export const SOURCE_CLI: readonly string[] = ['-r', '@swc-node/register', join(ROOT, 'cli', 'main.ts')];

/** Bundles cli/main.ts into bench/results/.build with scripts/build.mjs (inside the repo, so `node_modules` resolves). */
export async function buildCli(): Promise<string> {
  const outfile = join(ROOT, 'bench', 'results', '.build', 'signet.js');
  await mkdir(dirname(outfile), { recursive: true });
  await new Promise<void>((resolve, reject) => {
    const child = spawn(process.execPath, [join(ROOT, 'scripts', 'build.mjs'), outfile], {
      cwd: ROOT,
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`scripts/build.mjs exited ${code}`)),
    );
  });
  return outfile;
}

/** The last lines of a log, for an error message (the log's directory may be gone by the time anyone looks). */
async function logTail(file: string, lines = 20): Promise<string> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

async function procStatus(pid: number): Promise<{ rss: number; peakRss: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rss: kb('VmRSS') * 1024, peakRss: kb('VmHWM') * 1024 };
}

/**
 * Starts `node <cli> serve --config <configPath>` on a free port and waits for /healthz. `cli` is
 * the bundle `buildCli` wrote, or node arguments that run the CLI (`SOURCE_CLI`).
 */
export async function startServiceProcess(
  cli: string | readonly string[],
  configPath: string,
  logFile: string,
  profileDir?: string,
): Promise<ServiceProcess> {
  const port = await freePort();
  const args = [
    ...(profileDir !== undefined ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : []),
    ...(typeof cli === 'string' ? [cli] : cli),
    'serve',
    '--config',
    configPath,
    '--port',
    String(port),
  ];
  // Straight into a file: a pipe to this busy process could block the service's log writes.
  const log = openSync(logFile, 'a');
  // cwd: the repository, where `-r @swc-node/register` resolves.
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', log, log] });
  closeSync(log);
  let exitCode: number | null | undefined;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => {
      exitCode = code;
      resolve({ code, signal });
    }),
  );
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (exitCode !== undefined) {
      throw new Error(`signet serve exited with ${exitCode}; ${logFile} ends:\n${await logTail(logFile)}`);
    }
    try {
      const res = await fetch(`${url}/healthz`);
      await res.arrayBuffer();
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`signet serve did not answer /healthz within 20 s; see ${logFile}`);
    }
    await sleep(50);
  }
  const pid = child.pid as number;
  return {
    url,
    pid,
    exited,
    async kill(signal) {
      if (exitCode === undefined) child.kill(signal);
      return exited;
    },
    memory: () => procStatus(pid),
    resetPeak: () => writeFile(`/proc/${pid}/clear_refs`, '5'),
    async stop() {
      if (exitCode === undefined) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }
    },
  };
}
