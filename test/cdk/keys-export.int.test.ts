/**
 * `signet keys export WITNESS` for a KMS witness (the key the stack creates behind
 * `alias/signet-release`): the PEM it prints is the key's SPKI, as KMS GetPublicKey returns it,
 * which is what Kyverno and the policy-controller are given (docs/kubernetes.md).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { PassThrough } from 'node:stream';
import { main } from '../../cli/main';
import { startKmsEndpoint, type KmsEndpoint } from '../support/kms-endpoint';

let dir: string;
let kms: KmsEndpoint;
const savedEnv = { ...process.env };

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'signet-keys-export-'));
  kms = await startKmsEndpoint();
  Object.assign(process.env, {
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'AKIDSIGNETTEST',
    AWS_SECRET_ACCESS_KEY: 'signet-test-secret',
  });
});

afterAll(async () => {
  process.env = savedEnv;
  await kms?.close();
  await rm(dir, { recursive: true, force: true });
});

async function exportKey(
  witness: string,
  configFile: string,
): Promise<{ code: number; out: string; err: string }> {
  const out = new PassThrough();
  const err = new PassThrough();
  const chunks = { out: [] as Buffer[], err: [] as Buffer[] };
  out.on('data', (c: Buffer) => chunks.out.push(c));
  err.on('data', (c: Buffer) => chunks.err.push(c));
  const code = await main(
    ['keys', 'export', witness, '--config', configFile, '--log-level', 'error'],
    out as unknown as typeof process.stdout,
    err as unknown as typeof process.stderr,
  );
  return { code, out: Buffer.concat(chunks.out).toString(), err: Buffer.concat(chunks.err).toString() };
}

describe.each(['RSA_3072', 'ECC_NIST_P256'] as const)('signet keys export for a %s KMS witness', (spec) => {
  it('prints the SPKI PEM of the KMS key', async () => {
    const alias = `alias/signet-${spec.toLowerCase().replace(/_/g, '-')}`;
    const key = kms.createKey(spec, { alias });
    const configFile = path.join(dir, `${spec}.yaml`);
    await writeFile(
      configFile,
      `witnesses:\n  - name: kms-release\n    key: awskms://${kms.url.replace('http://', '')}/${alias}\n`,
    );
    const result = await exportKey('kms-release', configFile);
    expect(result.err).toBe('');
    expect(result.code).toBe(0);
    expect(result.out).toBe(key.publicKey.export({ type: 'spki', format: 'pem' }));
    expect(kms.count('GetPublicKey')).toBeGreaterThan(0);
  });
});
