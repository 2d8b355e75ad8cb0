/**
 * The Lambda bundles stay inside their budget (docs/PERFORMANCE.md: ≤ 1.5 MB minified), built
 * with the construct's own esbuild options. Sizes, not timings: `npm run bench` times `require`.
 * A stray value import of a package index (as `@sigstore/sign`'s once tripled them) fails here.
 */
import { buildSync } from 'esbuild';
import * as path from 'node:path';
import { BUNDLE_OPTIONS, PROJECT_ROOT } from '../../cdk/signet-function';

const BUDGET_BYTES = 1.5 * 1024 * 1024;

describe.each(['sign', 'verify', 'failure'] as const)('the %s function bundle', (name) => {
  const result = buildSync({
    entryPoints: [path.join(PROJECT_ROOT, 'functions', `${name}.ts`)],
    outfile: path.join(PROJECT_ROOT, 'cdk.out', 'bundle-size', name, 'index.js'),
    write: false,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: BUNDLE_OPTIONS.target,
    minify: BUNDLE_OPTIONS.minify,
    mainFields: [...BUNDLE_OPTIONS.mainFields],
    metafile: true,
    logLevel: 'error',
  });
  const output = Object.values(result.metafile.outputs).find((o) => o.entryPoint !== undefined);
  const packages = new Set(
    Object.keys(output?.inputs ?? {}).map((input) => /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(input)?.[1]),
  );

  it('is within the 1.5 MB budget', () => {
    expect(output?.bytes).toBeLessThanOrEqual(BUDGET_BYTES);
  });

  it('carries no Sigstore network clients (Fulcio, Rekor, TUF)', () => {
    for (const pkg of ['@sigstore/sign', '@sigstore/tuf', 'make-fetch-happen'])
      expect(packages).not.toContain(pkg);
  });
});
