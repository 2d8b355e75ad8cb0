/** `signet keys generate`, `signet keys export WITNESS` and `signet keys rotate WITNESS`. */
import { existsSync } from 'node:fs';
import { readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { loadConfigFile, parseConfig } from '../../lib/config/load';
import type { SignetConfig, Witness, WitnessKeyVersion } from '../../lib/config/types';
import { ConfigError, InputError, KeyError, describeError } from '../../lib/core/errors';
import { keyIdOf, spkiPem } from '../../lib/keys/algorithms';
import {
  KEY_SPECS,
  exportPublicKeyPem,
  generateKeyFile,
  publicKeyPathFor,
  type KeySpec,
} from '../../lib/keys/generate';
import { describeWindow, type KeyRing } from '../../lib/keys/keyring';
import { ensureLocalKeys } from '../../lib/keys/provision';
import {
  configTime,
  kmsKeySpec,
  nextKeyPath,
  renderKeysBlock,
  replaceWitnessKeys,
  specOfShape,
} from '../../lib/keys/rotate';
import { createSignet } from '../../lib/signet';
import { printJson } from '../output';
import { EXIT } from '../spec';
import type { CommandContext } from './context';

export async function keysGenerate(ctx: CommandContext): Promise<number> {
  const { flags } = ctx;
  const out = flags.string('out');
  if (out === undefined) {
    for (const name of ['type', 'force']) {
      if (flags.has(name)) {
        throw new InputError('REQUEST_INVALID', `--${name}`, 'goes with --out FILE (one key file)');
      }
    }
    const config = await loadConfigFile(ctx.configPath);
    const created = await ensureLocalKeys(config, ctx.logger);
    if (ctx.json) printJson(ctx.out, created);
    else {
      for (const key of created)
        ctx.out.write(`${key.witness}: created ${key.path} (${key.spec}) ${key.keyId}\n`);
      if (created.length === 0) ctx.out.write('every local key already exists\n');
    }
    return EXIT.ok;
  }
  const spec = (flags.string('type') ?? 'ec-p256') as KeySpec;
  if (!KEY_SPECS.includes(spec)) {
    throw new InputError('REQUEST_INVALID', '--type', `must be one of ${KEY_SPECS.join(', ')}`);
  }
  const force = flags.boolean('force');
  if (!force) {
    // The library refuses too (atomically); this says which flag replaces the key.
    const existing = [out, publicKeyPathFor(out)].find((file) => existsSync(file));
    if (existing !== undefined) {
      throw new InputError(
        'REQUEST_INVALID',
        '--out',
        `${existing} already exists; pass --force to replace it`,
      );
    }
  }
  const keyId = await generateKeyFile(out, spec, { overwrite: force });
  if (ctx.json) printJson(ctx.out, { path: out, publicKeyPath: publicKeyPathFor(out), spec, keyId });
  else ctx.out.write(`${out}: ${spec} ${keyId}\n`);
  return EXIT.ok;
}

export async function keysExport(ctx: CommandContext): Promise<number> {
  const config = await loadConfigFile(ctx.configPath);
  const name = ctx.args[0] as string;
  const signet = createSignet(config, { logger: ctx.logger });
  try {
    const witness = config.witnesses.find((w) => w.name === name);
    if (witness?.rotation === undefined) {
      ctx.out.write(await exportPublicKeyPem(signet.keys.get(name)));
    } else {
      ctx.out.write(await exportRotatingKeys(signet.keys, name, Date.now()));
    }
  } finally {
    signet.keys.close();
  }
  return EXIT.ok;
}

/**
 * Every current key of a rotating witness (valid now or later; expired ones are left out), each
 * PEM after a comment line naming its key id and window: cosign, Kyverno and the policy-controller
 * read the PEM blocks and skip the comments.
 */
async function exportRotatingKeys(keys: KeyRing, name: string, now: number): Promise<string> {
  let signing: string | undefined;
  try {
    signing = await keys.get(name, now).keyId();
  } catch (err) {
    if (!(err instanceof KeyError && err.code === 'KEY_UNAVAILABLE')) throw err;
  }
  const current = keys.versions(name).filter((v) => v.notAfter === undefined || v.notAfter >= now);
  const blocks = await Promise.all(
    current.map(async (v) => {
      const [publicKey, keyId] = await Promise.all([v.key.publicKey(), v.key.keyId()]);
      const spki = keyIdOf(publicKey);
      const names = keyId === spki ? spki : `${spki} (${keyId})`;
      const role = keyId === signing ? ', signs now' : v.key.canSign ? '' : ', verify only';
      return `# witness "${name}" key ${names} valid ${describeWindow(v)}${role}\n${spkiPem(publicKey)}`;
    }),
  );
  return blocks.join('');
}

/**
 * `signet keys rotate WITNESS [--type SPEC]`: for a file-key witness, writes a new key file next
 * to the current one and prints the `keys:` block that adds it (the witness signs with it from
 * now, its current keys keep verifying); for a KMS witness, prints the steps and the block. The
 * configuration itself is left as it is: the user pastes the block.
 */
export async function keysRotate(ctx: CommandContext): Promise<number> {
  const name = ctx.args[0] as string;
  const typeFlag = ctx.flags.string('type') as KeySpec | undefined;
  if (typeFlag !== undefined && !KEY_SPECS.includes(typeFlag)) {
    throw new InputError('REQUEST_INVALID', '--type', `must be one of ${KEY_SPECS.join(', ')}`);
  }
  const config = await loadConfigFile(ctx.configPath);
  const witness = config.witnesses.find((w) => w.name === name);
  if (witness === undefined) {
    const known = config.witnesses.map((w) => `"${w.name}"`).join(', ');
    throw new ConfigError(
      'WITNESS_UNKNOWN',
      `no witness named "${name}"; configured: ${known === '' ? 'none' : known}`,
    );
  }
  const current = witness.key;
  if (current.$case !== 'file' && current.$case !== 'kms') {
    throw new InputError(
      'REQUEST_INVALID',
      'WITNESS',
      `witness "${name}" does not sign (${current.$case}): its signer rotates its key; add their new public key to the witness's keys: list`,
    );
  }
  if (current.$case === 'kms' && ctx.flags.boolean('write')) {
    throw new InputError(
      'REQUEST_INVALID',
      '--write',
      'goes with file:// keys: a KMS key is created outside Signet first',
    );
  }
  const versions: readonly WitnessKeyVersion[] = witness.rotation?.keys ?? [
    { key: current, notBefore: undefined, notAfter: undefined },
  ];
  const now = Math.floor(Date.now() / 1000) * 1000;
  const signet = createSignet(config, { logger: ctx.logger });
  try {
    const spec = typeFlag ?? specOfShape(await signet.keys.get(name, now).shape());
    const previous = versions.map((v) => ({
      ...v,
      ...(v.key === current ? { comment: 'the key it signed with: verifies the signatures it made' } : {}),
    }));
    if (current.$case === 'file') {
      const file = nextKeyPath(current.path, new Date(now));
      const keyId = await generateKeyFile(file, spec);
      const block = renderKeysBlock(
        [
          {
            key: { $case: 'file', path: file },
            notBefore: now,
            notAfter: undefined,
            comment: `new: ${spec} ${keyId}`,
          },
          ...previous,
        ],
        config.baseDir,
      );
      if (ctx.flags.boolean('write')) {
        await writeWitnessKeys(config, name, block, versions.length + 1);
        ctx.out.write(
          `${file}: ${spec} ${keyId}\n\n# ${config.source ?? ''}: witness "${name}" now reads:\n  - name: ${name}\n${block}\n` +
            FILE_STEPS(name, publicKeyPathFor(file)),
        );
        return EXIT.ok;
      }
      ctx.out.write(
        `${file}: ${spec} ${keyId}\n\n` +
          `# In ${config.source ?? 'the configuration'}, replace witness "${name}"'s ${witness.rotation === undefined ? 'key:' : 'keys:'} with:\n` +
          `  - name: ${name}\n${block}\n` +
          FILE_STEPS(name, publicKeyPathFor(file)),
      );
      return EXIT.ok;
    }
    ctx.out.write(await kmsSteps(config, witness, signet.keys, spec, previous, now));
    return EXIT.ok;
  } finally {
    signet.keys.close();
  }
}

/**
 * Puts `block` in place of witness `name`'s keys in the configuration file, all at once (a
 * temporary file renamed over it), and only when the result loads with this witness's `count`
 * keys and everything else exactly as it was; otherwise the file is left untouched.
 */
async function writeWitnessKeys(
  config: SignetConfig,
  name: string,
  block: string,
  count: number,
): Promise<void> {
  const source = config.source;
  if (source === undefined)
    throw new InputError('REQUEST_INVALID', '--write', 'there is no configuration file to write');
  const refuse = (why: string): InputError =>
    new InputError(
      'REQUEST_INVALID',
      '--write',
      `${source} left as it was: ${why}; paste the block printed without --write`,
    );
  const updated = replaceWitnessKeys(await readFile(source, 'utf8'), name, block);
  if (updated === undefined) throw refuse(`witness "${name}" is not a plain mapping under witnesses:`);
  let reread: SignetConfig;
  try {
    reread = parseConfig(updated, { source, baseDir: config.baseDir });
  } catch (err) {
    throw refuse(`the edited configuration does not load (${describeError(err)})`);
  }
  const others = (c: SignetConfig): string =>
    JSON.stringify({ ...c, witnesses: c.witnesses.filter((w) => w.name !== name) });
  const keys = reread.witnesses.find((w) => w.name === name)?.rotation?.keys.length;
  if (others(reread) !== others(config) || keys !== count)
    throw refuse("the edit would change more than the witness's keys");
  const temp = path.join(path.dirname(source), `.${path.basename(source)}.${process.pid}.tmp`);
  try {
    await writeFile(temp, updated, { mode: (await stat(source)).mode & 0o777, flag: 'wx' });
    await rename(temp, source);
  } finally {
    await rm(temp, { force: true });
  }
}

const FILE_STEPS = (name: string, publicKeyFile: string): string =>
  `# Then:
#  1. Give verifiers the new public key before it signs anything they check: ${publicKeyFile}
#     (signet keys export ${name} prints every current key; Kyverno and ClusterImagePolicy take several).
#  2. Restart signet serve (or reload the config): from notBefore the witness signs with the new key,
#     and signatures by its other keys keep verifying.
#  3. Once no image you run depends on signatures by the old key, give it notAfter (or remove it),
#     and delete its private key file, or list it as publicKey: file://<its .pub> until then.
`;

/** The steps of a KMS witness's rotation, with the `keys:` block (the current key pinned as a public key). */
async function kmsSteps(
  config: SignetConfig,
  witness: Witness,
  keys: KeyRing,
  spec: KeySpec,
  previous: readonly (WitnessKeyVersion & { readonly comment?: string })[],
  now: number,
): Promise<string> {
  const name = witness.name;
  const signingKey = keys.get(name, now);
  const [pem, arn] = await Promise.all([exportPublicKeyPem(signingKey), signingKey.keyId()]);
  const current = witness.key;
  const region = current.$case === 'kms' && current.region !== undefined ? ` --region ${current.region}` : '';
  // The current KMS key stays listed by its public key: verifying it then needs no KMS grant, and
  // the key itself can be disabled as soon as nothing signs with it.
  const kept = previous.map((v) =>
    v.key === current
      ? {
          ...v,
          key: { $case: 'publicKeyPem' as const, pem },
          comment: `${arn}, pinned: verifies the signatures it made`,
        }
      : v,
  );
  const block = renderKeysBlock(
    [
      {
        key: {
          $case: 'kms',
          keyId: '<NEW KEY ARN>',
          region: undefined,
          endpoint: current.$case === 'kms' ? current.endpoint : undefined,
        },
        notBefore: now,
        notAfter: undefined,
        comment: 'new',
      },
      ...kept,
    ],
    config.baseDir,
  );
  return (
    `# Witness "${name}" signs with KMS key ${arn}. To rotate it:\n` +
    `#  1. Create the new key:\n` +
    `#       aws kms create-key --key-spec ${kmsKeySpec(spec)} --key-usage SIGN_VERIFY --description 'Signet witness "${name}"'${region}\n` +
    `#     With the CDK construct (SigningService), create it this way too and give its ARN as\n` +
    `#     keys: { ${name}: { existingKeyArn: '<NEW KEY ARN>' } }; the key the construct created before is\n` +
    `#     retained (RemovalPolicy.RETAIN), not deleted, when it leaves the stack.\n` +
    `#  2. In ${config.source ?? 'the configuration'}, replace witness "${name}"'s ${witness.rotation === undefined ? 'key:' : 'keys:'} with:\n` +
    `  - name: ${name}\n${block}` +
    `#     (outside CDK you may keep the alias instead: name it as the new key and move it with\n` +
    `#     aws kms update-alias --alias-name <alias> --target-key-id <new key id>${region}).\n` +
    `#  3. Deploy (cdk deploy) or restart signet serve, and give verifiers the new public key:\n` +
    `#       signet keys export ${name}\n` +
    `#  4. Disable the old key, which now only verifies through its pinned public key:\n` +
    `#       aws kms disable-key --key-id ${arn}${region}\n` +
    `#     Keep it (never schedule its deletion) until no image you run depends on its signatures.\n` +
    `# Rotation time: ${configTime(now)}\n`
  );
}
