/**
 * `npx cdk synth` from the CLI, the way a user runs it: the app from cdk.json, the example
 * configuration, real esbuild bundles, cdk-nag. Docker is made unusable (CDK_DOCKER points
 * nowhere), so a passing synth proves bundling is local.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const ROOT = path.resolve(__dirname, '..', '..');

let out: string;

beforeAll(async () => {
  out = await mkdtemp(path.join(tmpdir(), 'signet-synth-'));
});

afterAll(async () => {
  await rm(out, { recursive: true, force: true });
});

describe('cdk synth from the CLI', () => {
  it('synthesizes the example stack with local bundles and no cdk-nag errors', async () => {
    const { stderr } = await run(
      path.join(ROOT, 'node_modules', '.bin', 'cdk'),
      ['synth', '--quiet', '--no-notices', '-o', out],
      {
        cwd: ROOT,
        env: { ...process.env, CDK_DOCKER: path.join(out, 'no-docker-here'), CDK_DISABLE_VERSION_CHECK: '1' },
        timeout: 120_000,
      },
    );
    // The example's local-key rules are warnings, not errors.
    expect(stderr).toContain('signet:local-key-rule');
    expect(stderr).not.toMatch(/\bERROR\b/);

    const template = JSON.parse(await readFile(path.join(out, 'Signet.template.json'), 'utf8')) as {
      Resources: Record<
        string,
        { Type: string; Properties: Record<string, unknown>; Metadata?: Record<string, string> }
      >;
    };
    const functions = Object.values(template.Resources).filter((r) => r.Type === 'AWS::Lambda::Function');
    expect(functions).toHaveLength(3);
    for (const fn of functions) {
      const asset = fn.Metadata?.['aws:asset:path'];
      expect(asset).toBeDefined();
      const files = await readdir(path.join(out, asset as string));
      expect(files.sort()).toEqual(['index.js', 'index.js.map']);
      const bundle = await stat(path.join(out, asset as string, 'index.js'));
      expect(bundle.size).toBeGreaterThan(10_000);
    }
  }, 120_000);
});
