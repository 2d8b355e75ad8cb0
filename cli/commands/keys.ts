/** `signet keys generate` and `signet keys export WITNESS`. */
import { existsSync } from 'node:fs';
import { loadConfigFile } from '../../lib/config/load';
import { InputError } from '../../lib/core/errors';
import {
  KEY_SPECS,
  exportPublicKeyPem,
  generateKeyFile,
  publicKeyPathFor,
  type KeySpec,
} from '../../lib/keys/generate';
import { ensureLocalKeys } from '../../lib/keys/provision';
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
  const signet = createSignet(config, { logger: ctx.logger });
  try {
    ctx.out.write(await exportPublicKeyPem(signet.keys.get(ctx.args[0] as string)));
  } finally {
    signet.keys.close();
  }
  return EXIT.ok;
}
