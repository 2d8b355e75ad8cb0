import { generateKeyPair, randomBytes, type KeyObject } from 'node:crypto';
import { chmod, link, mkdir, open, rename, rm, stat } from 'node:fs/promises';
import * as path from 'node:path';
import { ConfigError, describeError } from '../core/errors';
import { keyIdOf, spkiPem } from './algorithms';
import type { WitnessKey } from './types';

/** The kinds of local key Signet generates. */
export type KeySpec = 'rsa-2048' | 'rsa-3072' | 'rsa-4096' | 'ec-p256' | 'ec-p384';

/** Every KeySpec, for validating user input. */
export const KEY_SPECS: readonly KeySpec[] = ['rsa-2048', 'rsa-3072', 'rsa-4096', 'ec-p256', 'ec-p384'];

/** Where the public key of a private key file goes: `<path minus .pem>.pub`. */
export function publicKeyPathFor(privateKeyPath: string): string {
  return `${privateKeyPath.replace(/\.pem$/i, '')}.pub`;
}

function generatePair(spec: KeySpec): Promise<{ privateKey: KeyObject; publicKey: KeyObject }> {
  return new Promise((resolve, reject) => {
    const done = (err: Error | null, publicKey: KeyObject, privateKey: KeyObject): void =>
      err ? reject(err) : resolve({ privateKey, publicKey });
    switch (spec) {
      case 'rsa-2048':
        return generateKeyPair('rsa', { modulusLength: 2048 }, done);
      case 'rsa-3072':
        return generateKeyPair('rsa', { modulusLength: 3072 }, done);
      case 'rsa-4096':
        return generateKeyPair('rsa', { modulusLength: 4096 }, done);
      case 'ec-p256':
        return generateKeyPair('ec', { namedCurve: 'P-256' }, done);
      case 'ec-p384':
        return generateKeyPair('ec', { namedCurve: 'P-384' }, done);
    }
  });
}

async function exists(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch {
    return false;
  }
}

/** Writes `text` to a fresh temporary file next to `target`, flushed to disk, with `mode`. */
async function writeTemp(target: string, text: string, mode: number): Promise<string> {
  const temp = path.join(
    path.dirname(target),
    `.${path.basename(target)}.${randomBytes(6).toString('hex')}.tmp`,
  );
  const handle = await open(temp, 'wx', mode);
  try {
    await handle.writeFile(text);
    await handle.sync();
  } finally {
    await handle.close();
  }
  // The umask may have taken bits away from `mode`; set exactly what was asked.
  await chmod(temp, mode);
  return temp;
}

const refuse = (file: string): ConfigError =>
  new ConfigError(
    'KEY_INVALID',
    `${file} already exists; refusing to overwrite a key (\`signet keys generate --out FILE --force\` replaces it)`,
  );

/**
 * Moves `temp` to `target`. Without `overwrite`, a hard link claims `target` atomically, so a file
 * created meanwhile by someone else is never replaced.
 */
async function install(temp: string, target: string, overwrite: boolean): Promise<void> {
  if (overwrite) return rename(temp, target);
  try {
    await link(temp, target);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw refuse(target);
    // File systems without hard links: fall back to check-then-rename.
    if (await exists(target)) throw refuse(target);
    return rename(temp, target);
  }
  await rm(temp, { force: true });
}

/**
 * Generates a key pair and writes the private key as PKCS#8 PEM (mode 0600, parent directories
 * created 0700) and the public key as SPKI PEM next to it (`publicKeyPathFor`). Each file is written
 * to a temporary file and renamed, so neither is ever half-written; existing files are kept unless
 * `overwrite` is set. Returns the key id (`sha256:<SPKI digest>`).
 */
export async function generateKeyFile(
  file: string,
  spec: KeySpec,
  options: { overwrite?: boolean } = {},
): Promise<string> {
  const overwrite = options.overwrite ?? false;
  const target = path.resolve(file);
  const pubTarget = publicKeyPathFor(target);
  if (!overwrite) {
    for (const existing of [target, pubTarget]) if (await exists(existing)) throw refuse(existing);
  }
  const { privateKey, publicKey } = await generatePair(spec);
  const temps: string[] = [];
  try {
    await mkdir(path.dirname(target), { recursive: true, mode: 0o700 });
    const privateTemp = await writeTemp(
      target,
      privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      0o600,
    );
    temps.push(privateTemp);
    const publicTemp = await writeTemp(pubTarget, spkiPem(publicKey), 0o644);
    temps.push(publicTemp);
    await install(privateTemp, target, overwrite);
    try {
      await install(publicTemp, pubTarget, overwrite);
    } catch (err) {
      // Keep the pair together: without its public key file, the new private key goes too.
      if (!overwrite) await rm(target, { force: true });
      throw err;
    }
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError('KEY_UNREADABLE', `cannot write key ${target}: ${describeError(err)}`, {
      cause: err,
    });
  } finally {
    await Promise.all(temps.map((t) => rm(t, { force: true })));
  }
  return keyIdOf(publicKey);
}

/** The SPKI PEM public key of a witness (what `cosign verify --key` takes). */
export async function exportPublicKeyPem(key: WitnessKey): Promise<string> {
  return spkiPem(await key.publicKey());
}
