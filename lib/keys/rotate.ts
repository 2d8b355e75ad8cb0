/**
 * What `signet keys rotate` writes and prints: where a witness's new key file goes, which kind
 * of key it is, and the `keys:` block that puts it next to the witness's current keys, as YAML a
 * user pastes in place of the witness's `key:` / `keys:`.
 */
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { isMap, isScalar, isSeq, parseDocument } from 'yaml';
import type { SingleKeyReference, WitnessKeyVersion } from '../config/types';
import type { KeySpec } from './generate';
import type { KeyShape } from './types';

/** The key spec of the same kind as `shape` (RSA of its size, EC on its curve); P-256 otherwise. */
export function specOfShape(shape: KeyShape): KeySpec {
  switch (shape.$case) {
    case 'rsa':
      return shape.bits >= 4096 ? 'rsa-4096' : shape.bits >= 3072 ? 'rsa-3072' : 'rsa-2048';
    case 'ec':
      return shape.curve === 'P-384' ? 'ec-p384' : 'ec-p256';
  }
}

/** The KMS `KeySpec` of a key spec (`ECC_NIST_P256`, `RSA_3072`). */
export function kmsKeySpec(spec: KeySpec): string {
  switch (spec) {
    case 'ec-p256':
      return 'ECC_NIST_P256';
    case 'ec-p384':
      return 'ECC_NIST_P384';
    case 'rsa-2048':
      return 'RSA_2048';
    case 'rsa-3072':
      return 'RSA_3072';
    case 'rsa-4096':
      return 'RSA_4096';
  }
}

/**
 * A free path for a new key next to `current`: `<name>-<YYYYMMDD>.pem` (the date of `now`, and
 * `-2`, `-3`... when taken), with `<name>` the current file's name without a date suffix it has.
 */
export function nextKeyPath(
  current: string,
  now: Date,
  exists: (file: string) => boolean = existsSync,
): string {
  const dir = path.dirname(current);
  const base = path
    .basename(current)
    .replace(/\.pem$/i, '')
    .replace(/-\d{8}(-\d+)?$/, '');
  const date = now.toISOString().slice(0, 10).replace(/-/g, '');
  for (let n = 1; ; n += 1) {
    const candidate = path.join(dir, `${base}-${date}${n === 1 ? '' : `-${n}`}.pem`);
    if (!exists(candidate) && !exists(candidate.replace(/\.pem$/, '.pub'))) return candidate;
  }
}

/** A date-time the config reads back exactly (whole seconds, UTC). */
export const configTime = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

/** How one key reads in the config, relative to its directory `baseDir`. */
function keyField(key: SingleKeyReference, baseDir: string): string {
  const file = (p: string): string => {
    const relative = path.relative(baseDir, p);
    return `file://${relative.startsWith('..') || path.isAbsolute(relative) ? p : relative.split(path.sep).join('/')}`;
  };
  switch (key.$case) {
    case 'file':
      return `key: ${file(key.path)}`;
    case 'kms':
      return `key: ${JSON.stringify(`awskms://${key.endpoint?.replace(/^https?:\/\//, '') ?? ''}/${key.keyId}`)}`;
    case 'publicKeyFile':
      return `publicKey: ${file(key.path)}`;
    case 'publicKeyPem':
      return `publicKey: ${JSON.stringify(key.pem)}`;
  }
}

/**
 * The `keys:` block of a witness with `versions`, indented to sit under `- name:` in `witnesses:`,
 * one flow mapping per key, each with an optional trailing comment.
 */
export function renderKeysBlock(
  versions: readonly (WitnessKeyVersion & { readonly comment?: string })[],
  baseDir: string,
): string {
  const lines = versions.map((v) => {
    const fields = [
      keyField(v.key, baseDir),
      ...(v.notBefore !== undefined ? [`notBefore: ${configTime(v.notBefore)}`] : []),
      ...(v.notAfter !== undefined ? [`notAfter: ${configTime(v.notAfter)}`] : []),
    ];
    return `      - { ${fields.join(', ')} }${v.comment !== undefined ? ` # ${v.comment}` : ''}`;
  });
  return `    keys:\n${lines.join('\n')}\n`;
}

/**
 * `text`, a configuration, with witness `name`'s `key:` / `publicKey:` / `keys:` replaced by the
 * `keys:` of `block` (what `renderKeysBlock` prints), in the same place; comments and everything
 * else kept. Undefined when the witness is not a plain mapping of a `witnesses:` list.
 */
export function replaceWitnessKeys(text: string, name: string, block: string): string | undefined {
  const doc = parseDocument(text);
  const witnesses = doc.get('witnesses', true);
  if (!isSeq(witnesses)) return undefined;
  const entry = witnesses.items.find((item) => isMap(item) && item.get('name') === name);
  if (!isMap(entry)) return undefined;
  const at = entry.items.findIndex(
    (pair) => isScalar(pair.key) && ['key', 'publicKey', 'keys'].includes(String(pair.key.value)),
  );
  const keys = parseDocument(block.replace(/^ {4}/gm, '')).get('keys', true);
  if (at < 0 || !isSeq(keys)) return undefined;
  entry.items.splice(at, 1, doc.createPair('keys', keys));
  try {
    return doc.toString();
  } catch {
    // An alias elsewhere named an anchor the replaced key held.
    return undefined;
  }
}
