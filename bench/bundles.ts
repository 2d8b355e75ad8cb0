/**
 * Lambda bundle figures: the minified size of each function's bundle (built with esbuild exactly
 * as the SignetFunction construct builds it) and its cold `require` time, the median of several
 * fresh `node` processes, without and with `--enable-source-maps` (the functions run with it).
 *
 *   npm run bench:bundles            # 7 runs each
 *   node -r @swc-node/register bench/bundles.ts 15
 *
 * The child processes get fake credentials and every AWS endpoint pointed at a closed loopback
 * port: module scope starts reading the configuration at load, and that request must go nowhere.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { gzipSync } from 'node:zlib';
import { buildSync } from 'esbuild';
import { BUNDLE_OPTIONS, PROJECT_ROOT } from '../cdk/signet-function';

const FUNCTIONS = ['sign', 'verify', 'failure'] as const;

/** The figures of one function's bundle. */
export interface BundleFigures {
  readonly name: (typeof FUNCTIONS)[number];
  readonly bytes: number;
  readonly gzipBytes: number;
  readonly mapBytes: number;
  /** Median cold `require` time, plain and with `--enable-source-maps` (as the functions run). */
  readonly requireMs: number;
  readonly requireMsSourceMaps: number;
}

const CHILD_ENV = {
  PATH: process.env['PATH'] ?? '',
  AWS_REGION: 'us-east-1',
  AWS_ACCESS_KEY_ID: 'AKIDBENCH',
  AWS_SECRET_ACCESS_KEY: 'bench',
  AWS_EC2_METADATA_DISABLED: 'true',
  AWS_ENDPOINT_URL: 'http://127.0.0.1:9',
  SIGNET_CONFIG_PARAMETER: '/signet/bench',
  SIGNET_EVENT_BUS: 'signet-bench',
  SIGNET_DLQ_URL: 'http://127.0.0.1:9/111122223333/signet-bench',
  SIGNET_TOKEN_SECRET: 'signet-bench',
  POWERTOOLS_LOG_LEVEL: 'SILENT',
  POWERTOOLS_METRICS_DISABLED: 'true',
};

// Measures one require inside a fresh process and exits before any I/O it started completes.
const PROBE = `
const t = process.hrtime.bigint();
require(process.argv[1]);
process.stdout.write(String(Number(process.hrtime.bigint() - t) / 1e6));
process.exit(0);
`;

function requireMs(bundle: string, sourceMaps: boolean, runs: number): number {
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) {
    const args = [...(sourceMaps ? ['--enable-source-maps'] : []), '-e', PROBE, bundle];
    samples.push(Number(execFileSync(process.execPath, args, { env: CHILD_ENV, encoding: 'utf8' })));
  }
  samples.sort((a, b) => a - b);
  return samples[Math.floor(samples.length / 2)] as number;
}

/** Builds every function's bundle into a temporary directory and measures it (`runs` requires each way). */
export function measureBundles(runs: number): BundleFigures[] {
  const out = mkdtempSync(path.join(tmpdir(), 'signet-bundles-'));
  try {
    return FUNCTIONS.map((name) => {
      const outfile = path.join(out, name, 'index.js');
      buildSync({
        entryPoints: [path.join(PROJECT_ROOT, 'functions', `${name}.ts`)],
        outfile,
        bundle: true,
        platform: 'node',
        format: 'cjs',
        target: BUNDLE_OPTIONS.target,
        minify: BUNDLE_OPTIONS.minify,
        sourcemap: BUNDLE_OPTIONS.sourceMap,
        sourcesContent: false,
        mainFields: [...BUNDLE_OPTIONS.mainFields],
        logLevel: 'error',
      });
      return {
        name,
        bytes: statSync(outfile).size,
        gzipBytes: gzipSync(readFileSync(outfile)).length,
        mapBytes: statSync(`${outfile}.map`).size,
        requireMs: requireMs(outfile, false, runs),
        requireMsSourceMaps: requireMs(outfile, true, runs),
      };
    });
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

const kb = (bytes: number) => (bytes / 1024).toFixed(0).padStart(6);

if (require.main === module) {
  const runs = Math.max(1, Number(process.argv[2] ?? 7) || 7);
  console.log(
    `Signet Lambda bundles (esbuild ${BUNDLE_OPTIONS.target}, minified, cjs; node ${process.version}; median of ${runs})`,
  );
  console.log('function   bundle KB   gzip KB   map KB   require ms   with source maps ms');
  for (const f of measureBundles(runs)) {
    console.log(
      `${f.name.padEnd(9)} ${kb(f.bytes)}     ${kb(f.gzipBytes)}   ${kb(f.mapBytes)}   ${f.requireMs.toFixed(1).padStart(10)}   ${f.requireMsSourceMaps.toFixed(1).padStart(19)}`,
    );
  }
}
