/**
 * The Lambda tests run on Node.js 22 (`npm run test:lambda`), while better-sqlite3 in
 * node_modules is built for the Node.js that ran `npm ci`: neither the functions nor their tests
 * may load it (the push journal belongs to the local service). Checked on the import graph as
 * esbuild resolves it, so a new transitive import fails here on any Node.js, not only on 22.
 */
import { buildSync } from 'esbuild';
import { readdirSync } from 'node:fs';
import * as path from 'node:path';

const ROOT = path.resolve(__dirname, '..', '..');

function importGraph(entries: string[]): { inputs: string[]; packages: Set<string> } {
  const { metafile } = buildSync({
    entryPoints: entries,
    absWorkingDir: ROOT,
    outdir: path.join(ROOT, 'cdk.out', 'import-graph'),
    write: false,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    packages: 'external',
    metafile: true,
    logLevel: 'silent',
  });
  const inputs = Object.keys(metafile.inputs);
  const packages = new Set(
    Object.values(metafile.inputs).flatMap((input) =>
      input.imports
        .filter((i) => i.external && !i.path.startsWith('node:'))
        .map((i) => /^((?:@[^/]+\/)?[^/]+)/.exec(i.path)?.[1] ?? i.path),
    ),
  );
  return { inputs, packages };
}

const functions = ['sign', 'verify', 'failure'].map((name) => path.join(ROOT, 'functions', `${name}.ts`));
const tests = readdirSync(__dirname)
  .filter((file) => file.endsWith('.test.ts'))
  .map((file) => path.join(__dirname, file));

describe.each([
  ['the functions', functions],
  ['the Lambda tests', tests],
])('%s', (_what, entries) => {
  const graph = importGraph(entries);

  it('never import better-sqlite3 or the journal', () => {
    expect(graph.packages).not.toContain('better-sqlite3');
    expect(graph.inputs.filter((input) => input.startsWith('lib/journal/'))).toEqual([]);
  });
});
