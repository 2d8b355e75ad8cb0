/**
 * `npx cdk synth` from the CLI, the way a user runs it: the app from cdk.json, its settings from
 * the environment (`APP_ENV`), real esbuild bundles, cdk-nag. Docker is made unusable (CDK_DOCKER
 * points nowhere), so a passing synth proves bundling is local.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { APP_ENV } from '../../functions/env';

const run = promisify(execFile);
const ROOT = path.resolve(__dirname, '..', '..');
// A configuration with a local-key rule next to the KMS ones, and the keys it needs.
const CONFIG = path.join(__dirname, 'fixtures', 'aws.yaml');
const KEYS = {
  release: { keySpec: 'ECC_NIST_P256' },
  archive: { existingKeyArn: 'arn:aws:kms:us-east-1:123456789012:key/abcd1234-ab12-cd34-ef56-abcdef123456' },
};

let out: string;

beforeAll(async () => {
  out = await mkdtemp(path.join(tmpdir(), 'signet-synth-'));
});

afterAll(async () => {
  await rm(out, { recursive: true, force: true });
});

describe('cdk synth from the CLI', () => {
  it('synthesizes the stack with local bundles and no cdk-nag errors', async () => {
    const { stderr } = await run(
      path.join(ROOT, 'node_modules', '.bin', 'cdk'),
      ['synth', '--quiet', '--no-notices', '-o', out],
      {
        cwd: ROOT,
        env: {
          ...process.env,
          [APP_ENV.config]: CONFIG,
          [APP_ENV.keys]: JSON.stringify(KEYS),
          CDK_DOCKER: path.join(out, 'no-docker-here'),
          CDK_DISABLE_VERSION_CHECK: '1',
        },
        timeout: 120_000,
      },
    );
    // A local-key rule is a warning (Lambda cannot sign with it), not an error.
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
