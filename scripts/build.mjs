// Bundles the CLI into dist/signet.js (dependencies stay in node_modules).
import { build } from 'esbuild';

await build({
  entryPoints: ['cli/main.ts'],
  outfile: 'dist/signet.js',
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
