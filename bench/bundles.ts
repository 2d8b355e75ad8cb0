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
const runs = Math.max(1, Number(process.argv[2] ?? 7) || 7);

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

function requireMs(bundle: string, sourceMaps: boolean): number {
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) {
    const args = [...(sourceMaps ? ['--enable-source-maps'] : []), '-e', PROBE, bundle];
    samples.push(Number(execFileSync(process.execPath, args, { env: CHILD_ENV, encoding: 'utf8' })));
  }
  samples.sort((a, b) => a - b);
  return samples[Math.floor(samples.length / 2)] as number;
}

const kb = (bytes: number) => (bytes / 1024).toFixed(0).padStart(6);

const out = mkdtempSync(path.join(tmpdir(), 'signet-bundles-'));
try {
  console.log(
    `Signet Lambda bundles (esbuild ${BUNDLE_OPTIONS.target}, minified, cjs; node ${process.version}; median of ${runs})`,
  );
  console.log('function   bundle KB   gzip KB   map KB   require ms   with source maps ms');
  for (const name of FUNCTIONS) {
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
    const size = statSync(outfile).size;
    const gzip = gzipSync(readFileSync(outfile)).length;
    const map = statSync(`${outfile}.map`).size;
    const plain = requireMs(outfile, false);
    const mapped = requireMs(outfile, true);
    console.log(
      `${name.padEnd(9)} ${kb(size)}     ${kb(gzip)}   ${kb(map)}   ${plain.toFixed(1).padStart(10)}   ${mapped.toFixed(1).padStart(19)}`,
    );
  }
} finally {
  rmSync(out, { recursive: true, force: true });
}
