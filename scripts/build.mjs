// Bundles the CLI into dist/signet.js (dependencies stay in node_modules).
// `node scripts/build.mjs <outfile>` writes it elsewhere (the benchmarks build their own copy).
import process from 'node:process';
import { build } from 'esbuild';

await build({
  entryPoints: ['cli/main.ts'],
  outfile: process.argv[2] ?? 'dist/signet.js',
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  packages: 'external',
  sourcemap: 'linked',
  logLevel: 'warning',
  // main.ts runs when it is the entry module; in the bundle that is the bundle itself.
  define: { 'require.main': 'module' },
});
