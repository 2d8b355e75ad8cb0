/**
 * Key rotation end to end, on a real registry, through `main` in process as users run the CLI:
 * an image signed by the witness's first key, `signet keys rotate` (a new key file and the keys:
 * block, pasted into the configuration as printed), an image signed after it by the new key; both
 * images admitted, each by the key that signed it. Then the old key is removed from the witness:
 * only the image signed after the rotation is admitted.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { main, reportError } from '../../cli/main';
import { makeImage, skopeoCopy } from '../support/images';
import { startKmsEndpoint } from '../support/kms-endpoint';
import { startTestRegistry, type TestRegistry } from '../support/registry';

jest.setTimeout(120_000);

class Capture extends Writable {
  text = '';
  override _write(chunk: Buffer, _encoding: string, done: () => void): void {
    this.text += chunk.toString();
    done();
  }
}

let dir: string;
let configFile: string;
let registry: TestRegistry;

/** Runs `signet <args> --config <file>` in process; the exit code as `bin/signet.js` would give it. */
async function signet(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out = new Capture();
  const err = new Capture();
  const code = await main(
    [...args, '--config', configFile, '--log-level', 'silent'],
    out as never,
    err as never,
  ).catch((error: unknown) => reportError(error, err as never));
  return { code, out: out.text, err: err.text };
}

/** The configuration with `witness` as the witness entry (`  - name: release` and its fields). */
const writeConfig = (witness: string): Promise<void> =>
  writeFile(
    configFile,
    `registries:
  - host: ${registry.host}
    insecure: true
witnesses:
${witness}signingRules:
  - name: release
    namespaces: [team-a]
    witness: release
    algorithm: ECDSA_SHA_256
    trigger: manual
policies:
  - name: team-a
    enabled: true
    images: ["${registry.host}/team-a/**"]
    attestors:
      - witnesses: [release]
`,
  );

let pushed = 0;
async function push(repository: string): Promise<string> {
  const layout = join(dir, `layout-${pushed}`);
  await makeImage(layout, { seed: `rotation-${pushed++}` });
  await skopeoCopy(layout, `${registry.host}/${repository}`);
  return `${registry.host}/${repository}`;
}

/** The key id that satisfied the witness for `image`, or the denial's reason code. */
async function verify(image: string): Promise<{ code: number; signer: string | undefined; reason: string }> {
  const run = await signet('verify', image, '--json');
  const decision = JSON.parse(run.out) as {
    reason?: { code: string };
    policies: {
      attestors: { witnesses: { signature?: { signer: string }; reason?: { code: string } }[] }[];
    }[];
  };
  const witness = decision.policies[0]?.attestors[0]?.witnesses[0];
  return { code: run.code, signer: witness?.signature?.signer, reason: witness?.reason?.code ?? '' };
}

const keyIdOf = async (pub: string): Promise<string> => {
  const { createHash, createPublicKey } = await import('node:crypto');
  const der = createPublicKey(await readFile(pub, 'utf8')).export({ type: 'spki', format: 'der' });
  return `sha256:${createHash('sha256').update(der).digest('hex')}`;
};

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'signet-rotation-'));
  registry = await startTestRegistry();
  configFile = join(dir, 'signet.yaml');
});

afterAll(async () => {
  await registry?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('a file-key witness rotated with signet keys rotate', () => {
  let before: string;
  let after: string;
  let oldKeyId: string;
  let newKeyId: string;
  let keysBlock: string;

  beforeAll(async () => {
    await writeConfig('  - name: release\n    key: file://keys/release.pem\n');
    expect((await signet('keys', 'generate')).code).toBe(0);
    oldKeyId = await keyIdOf(join(dir, 'keys', 'release.pub'));
    before = await push('team-a/app:before');
    expect((await signet('sign', before, '--json')).code).toBe(0);

    const rotated = await signet('keys', 'rotate', 'release');
    expect(rotated).toMatchObject({ code: 0, err: '' });
    // The block as printed, from its `- name:` line to the blank line after it.
    const lines = rotated.out.split('\n');
    const start = lines.indexOf('  - name: release');
    const end = lines.indexOf('', start);
    keysBlock = `${lines.slice(start, end).join('\n')}\n`;
    const newFile = /^(\S+\.pem): ec-p256 (sha256:[0-9a-f]{64})$/m.exec(rotated.out);
    expect(newFile).not.toBeNull();
    newKeyId = (newFile as RegExpExecArray)[2] as string;
    expect(newFile?.[1]).toMatch(/keys\/release-\d{8}\.pem$/);
    await writeConfig(keysBlock);

    after = await push('team-a/app:after');
    expect((await signet('sign', after, '--json')).code).toBe(0);
  });

  it('prints a keys: block with the new key first and the old key kept', () => {
    expect(keysBlock).toMatch(
      /^ {2}- name: release\n {4}keys:\n {6}- \{ key: file:\/\/keys\/release-\d{8}\.pem, notBefore: \S+Z \}.*\n {6}- \{ key: file:\/\/keys\/release\.pem \}.*\n$/,
    );
  });

  it('admits the image signed before the rotation, by the old key', async () => {
    expect(await verify(before)).toMatchObject({ code: 0, signer: oldKeyId });
  });

  it('admits the image signed after the rotation, by the new key', async () => {
    expect(await verify(after)).toMatchObject({ code: 0, signer: newKeyId });
  });

  it('exports both public keys, each after a comment naming it', async () => {
    const run = await signet('keys', 'export', 'release');
    expect(run.code).toBe(0);
    expect(run.out.match(/-----BEGIN PUBLIC KEY-----/g)).toHaveLength(2);
    expect(run.out).toContain(`# witness "release" key ${newKeyId} valid `);
    expect(run.out).toContain(`# witness "release" key ${oldKeyId} valid … .. …`);
  });

  describe('when the old key is removed from the witness', () => {
    beforeAll(async () => {
      await writeConfig(keysBlock.replace(/^ {6}- \{ key: file:\/\/keys\/release\.pem \}.*\n/m, ''));
    });

    it('denies the image only the old key signed', async () => {
      expect(await verify(before)).toMatchObject({ code: 1, reason: 'UNTRUSTED_SIGNER' });
    });

    it('still admits the image the new key signed', async () => {
      expect(await verify(after)).toMatchObject({ code: 0, signer: newKeyId });
    });
  });
});

describe('signet keys rotate for other witnesses', () => {
  beforeAll(async () => {
    // The key these cases rotate (kept when the cases above made it already).
    await writeConfig('  - name: release\n    key: file://keys/release.pem\n');
    expect((await signet('keys', 'generate')).code).toBe(0);
  });

  it('explains a KMS witness: the new key first, the current one pinned by its public key', async () => {
    const kms = await startKmsEndpoint();
    const saved = { ...process.env };
    Object.assign(process.env, {
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'AKIDSIGNETTEST',
      AWS_SECRET_ACCESS_KEY: 'signet-test-secret',
    });
    try {
      const key = kms.createKey('ECC_NIST_P384', { alias: 'alias/signet-release' });
      const host = kms.url.replace('http://', '');
      await writeConfig(`  - name: release\n    key: awskms://${host}/alias/signet-release\n`);
      const run = await signet('keys', 'rotate', 'release');
      expect(run).toMatchObject({ code: 0, err: '' });
      expect(run.out).toContain(`# Witness "release" signs with KMS key ${key.arn}.`);
      expect(run.out).toContain('aws kms create-key --key-spec ECC_NIST_P384 --key-usage SIGN_VERIFY');
      expect(run.out).toContain(`aws kms disable-key --key-id ${key.arn}`);
      const pinned = JSON.stringify(key.publicKey.export({ type: 'spki', format: 'pem' }).toString());
      expect(run.out).toContain(`- { key: "awskms://${host}/<NEW KEY ARN>", notBefore: `);
      expect(run.out).toContain(`- { publicKey: ${pinned} } # ${key.arn}, pinned`);
    } finally {
      process.env = saved;
      await kms.close();
    }
  });

  it('refuses a verify-only witness (exit 2), and an unknown --type', async () => {
    await writeConfig('  - name: release\n    publicKey: file://keys/release.pub\n');
    expect(await signet('keys', 'rotate', 'release')).toMatchObject({ code: 2 });
    await writeConfig('  - name: release\n    key: file://keys/release.pem\n');
    const run = await signet('keys', 'rotate', 'release', '--type', 'rsa-1024');
    expect(run.code).toBe(2);
    expect(run.err).toContain('--type');
  });

  it('writes a key of the kind --type names', async () => {
    await writeConfig('  - name: release\n    key: file://keys/release.pem\n');
    const run = await signet('keys', 'rotate', 'release', '--type', 'rsa-3072');
    expect(run.code).toBe(0);
    expect(run.out).toMatch(/keys\/release-\d{8}(-\d+)?\.pem: rsa-3072 sha256:/);
  });

  it('with --write, puts the block in the configuration file, comments kept', async () => {
    await writeFile(
      configFile,
      `# Signet for team A\nwitnesses:\n  - name: ci # the CI signer\n    key: file://keys/release.pem\n    description: signs on push\n`,
    );
    const run = await signet('keys', 'rotate', 'ci', '--write');
    expect(run).toMatchObject({ code: 0, err: '' });
    const text = await readFile(configFile, 'utf8');
    expect(text).toMatch(
      /^# Signet for team A\nwitnesses:\n {2}- name: ci # the CI signer\n {4}keys:\n {6}- \{ key: file:\/\/keys\/release-\d{8}(-\d+)?\.pem, notBefore: \S+Z \}.*\n {6}- \{ key: file:\/\/keys\/release\.pem \}.*\n {4}description: signs on push\n$/,
    );
    expect((await signet('config', 'check')).code).toBe(0);
  });

  it('with --write, leaves a configuration it cannot edit safely as it was', async () => {
    // Another witness names the same file through an anchor the rotated key holds.
    const text = `witnesses:\n  - name: ci\n    key: &k file://keys/release.pem\n  - name: audit\n    key: *k\n`;
    await writeFile(configFile, text);
    const run = await signet('keys', 'rotate', 'ci', '--write');
    expect(run.code).toBe(2);
    expect(run.err).toContain('left as it was');
    expect(await readFile(configFile, 'utf8')).toBe(text);
  });
});
