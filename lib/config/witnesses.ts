/** The `witnesses[]` section: named signers and the keys that stand for them. */
import type { BuildContext } from './build';
import { parseFileUri, parsePublicKey, parseSigningKeyUri, type Parsed } from './keyref';
import type { KeyReference, Witness } from './types';
import { didYouMean, Issues, ObjectReader, type Check } from './validate';

export interface WitnessRead {
  readonly name: string | undefined;
  readonly path: string;
  /** Undefined when the witness has problems (already reported). */
  readonly witness: Witness | undefined;
}

/** What later sections need to know about witnesses: declared names and, when valid, their key kind. */
export interface WitnessIndex {
  readonly declared: ReadonlyMap<string, KeyReference | undefined>;
}

const WITNESS_NAME = /^[a-z0-9][a-z0-9-_.]*$/;
const WITNESS_KEYS = [
  'name',
  'description',
  'key',
  'publicKey',
  'certificate',
  'certificateChain',
  'keyless',
];
const WITNESS_KEY_KINDS = ['key', 'publicKey', 'certificate', 'keyless'] as const;

const checkWitnessName: Check<string> = (name) =>
  WITNESS_NAME.test(name) && name.length <= 128
    ? undefined
    : `"${name}" is not a witness name: lowercase letters, digits, "-", "_" and "." (starting with a letter or digit), at most 128 characters`;

/** Records the problem of a parsed value at `at`, or returns the value. */
function take<T>(parsed: Parsed<T>, issues: Issues, at: string): T | undefined {
  if (parsed.ok) return parsed.value;
  issues.add(at, parsed.problem);
  return undefined;
}

/** Reads one `witnesses[]` entry. */
export function readWitness(
  value: unknown,
  at: string,
  context: BuildContext,
  issues: Issues,
): WitnessRead | undefined {
  const w = ObjectReader.of(issues, at, value, WITNESS_KEYS);
  if (w === undefined) return undefined;
  // name: unique; referenced by signing rules and policy attestors.
  const valid = w.requiredString('name', checkWitnessName);
  // An invalid name is still indexed, so references to it do not add "unknown witness" issues.
  const raw = w.get('name');
  const name = valid ?? (typeof raw === 'string' && raw.trim() !== '' ? raw : undefined);
  // description: free text.
  const description = w.optionalString('description');
  const kinds = WITNESS_KEY_KINDS.filter((k) => w.has(k));
  if (kinds.length !== 1) {
    issues.add(
      at,
      kinds.length === 0
        ? 'needs one of key (file:// or awskms://), publicKey, certificate or keyless'
        : `give exactly one of key, publicKey, certificate or keyless, not ${kinds.join(' and ')}`,
    );
    return { name, path: at, witness: undefined };
  }
  if (w.has('certificateChain') && !w.has('certificate')) {
    w.issue('certificateChain', 'only goes with certificate');
  }
  let key: KeyReference | undefined;
  const kind = kinds[0] as (typeof WITNESS_KEY_KINDS)[number];
  switch (kind) {
    case 'key': {
      // key: a signing key: file://<PKCS#8 PEM> (relative to the config file) or awskms://[host:port]/<key>.
      const uri = w.requiredString('key');
      if (uri !== undefined)
        key = take(parseSigningKeyUri(uri, context.baseDir, context.env), issues, w.at('key'));
      break;
    }
    case 'publicKey': {
      // publicKey: verify only: file://<PEM SPKI> or an inline PEM public key.
      const pem = w.requiredString('publicKey');
      if (pem !== undefined) key = take(parsePublicKey(pem, context.baseDir), issues, w.at('publicKey'));
      break;
    }
    case 'certificate': {
      // certificate, certificateChain: verify only: file:// PEM certificate and optional chain.
      const cert = w.requiredString('certificate');
      const chain = w.optionalString('certificateChain');
      const certificatePath =
        cert === undefined
          ? undefined
          : take(parseFileUri(cert, context.baseDir), issues, w.at('certificate'));
      const chainPath =
        chain === undefined
          ? undefined
          : take(parseFileUri(chain, context.baseDir), issues, w.at('certificateChain'));
      if (certificatePath !== undefined && (chain === undefined || chainPath !== undefined)) {
        key = { $case: 'certificate', certificatePath, chainPath };
      }
      break;
    }
    case 'keyless': {
      // keyless: verify only: {issuer: OIDC issuer URL, subject: identity in the Fulcio certificate}.
      const k = ObjectReader.of(issues, w.at('keyless'), w.get('keyless'), ['issuer', 'subject']);
      if (k === undefined) break;
      const issuer = k.requiredString('issuer', checkEndpointLike);
      const subject = k.requiredString('subject');
      if (issuer !== undefined && subject !== undefined) key = { $case: 'keyless', issuer, subject };
      break;
    }
  }
  return {
    name,
    path: at,
    witness: valid === undefined || key === undefined ? undefined : { name: valid, key, description },
  };
}

function checkEndpointLike(value: string): string | undefined {
  try {
    const url = new URL(value);
    return url.protocol === 'https:' || url.protocol === 'http:' ? undefined : 'must be an https:// URL';
  } catch {
    return `must be the OIDC issuer URL, e.g. https://token.actions.githubusercontent.com, got ${JSON.stringify(value)}`;
  }
}

/** The declared witness names (duplicates reported) for later sections to resolve against. */
export function indexWitnesses(reads: readonly WitnessRead[], issues: Issues): WitnessIndex {
  const declared = new Map<string, KeyReference | undefined>();
  const where = new Map<string, string>();
  for (const read of reads) {
    if (read.name === undefined) continue;
    const first = where.get(read.name);
    if (first !== undefined) {
      issues.add(`${read.path}.name`, `duplicate witness name "${read.name}" (also ${first})`);
      continue;
    }
    where.set(read.name, read.path);
    declared.set(read.name, read.witness?.key);
  }
  return { declared };
}

/** Checks a witness reference; returns the name when it is declared. */
export function resolveWitness(
  name: string,
  at: string,
  witnesses: WitnessIndex,
  issues: Issues,
): string | undefined {
  if (witnesses.declared.has(name)) return name;
  const known = [...witnesses.declared.keys()];
  const hint = didYouMean(name, known);
  const list =
    known.length === 0 ? ': no witnesses are configured' : ` (witnesses: ${known.slice(0, 10).join(', ')})`;
  issues.add(at, `unknown witness "${name}"${hint === '' ? list : hint}`);
  return undefined;
}
