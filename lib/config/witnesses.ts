/** The `witnesses[]` section: named signers and the keys that stand for them. */
import type { BuildContext } from './build';
import { parseFileUri, parsePublicKey, parseSigningKeyUri, type Parsed } from './keyref';
import { validatePattern } from '../sigstore/pattern';
import { isLoopbackHost } from './hosts';
import type {
  GithubClaims,
  KeyReference,
  KeyRotation,
  KeylessSubject,
  SingleKeyReference,
  Witness,
  WitnessKeyVersion,
  WitnessService,
} from './types';
import { didYouMean, Issues, ObjectReader, readString, type Check } from './validate';

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
  'roots',
  'trustedRoot',
  'requireSignedTime',
  'keyless',
  'keys',
  'transparencyLog',
  'timestampAuthority',
];
const WITNESS_KEY_KINDS = ['key', 'publicKey', 'keys', 'certificate', 'keyless'] as const;
/** Fields of a certificate witness besides `certificate` (which `roots` may replace). */
const CERTIFICATE_FIELDS = ['certificateChain', 'trustedRoot', 'requireSignedTime'] as const;
const KEYLESS_KEYS = ['issuer', 'subject', 'subjectRegExp', 'trustedRoot', 'github'];
const GITHUB_KEYS = ['repository', 'ref', 'trigger'];

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
  // A certificate witness is `certificate` (a pinned signing certificate), `roots`, or both.
  const kinds = WITNESS_KEY_KINDS.filter((k) => w.has(k) || (k === 'certificate' && w.has('roots')));
  if (kinds.length !== 1) {
    issues.add(
      at,
      kinds.length === 0
        ? 'needs one of key (file:// or awskms://), publicKey, keys, certificate (or roots) or keyless'
        : `give exactly one of key, publicKey, keys, certificate (or roots) or keyless, not ${kinds.join(' and ')}`,
    );
    return { name, path: at, witness: undefined };
  }
  if (kinds[0] !== 'certificate') {
    for (const field of CERTIFICATE_FIELDS) {
      // A rotating witness checks signing times against a trusted root too.
      if (field === 'trustedRoot' && kinds[0] === 'keys') continue;
      if (w.has(field))
        w.issue(
          field,
          field === 'trustedRoot'
            ? 'only goes with certificate, roots or keys'
            : 'only goes with certificate or roots',
        );
    }
  }
  let key: KeyReference | undefined;
  let rotation: KeyRotation | undefined;
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
    case 'keys':
      rotation = readKeyRotation(w, context, issues);
      key = rotation === undefined ? undefined : signsLast(rotation.keys);
      break;
    case 'certificate':
      key = readCertificateWitness(w, context, issues);
      break;
    case 'keyless':
      key = readKeylessWitness(w, context, issues);
      break;
  }
  // transparencyLog, timestampAuthority: Sigstore services every signature goes through (signing keys only).
  const services = readWitnessServices(w, kind === 'key' || (kind === 'keys' && canSign(key)), issues);
  return {
    name,
    path: at,
    witness:
      valid === undefined || key === undefined || services === undefined
        ? undefined
        : { name: valid, key, description, ...services, ...(rotation !== undefined ? { rotation } : {}) },
  };
}

const KEY_VERSION_FIELDS = ['key', 'publicKey', 'notBefore', 'notAfter'];
// An RFC 3339 date-time with a zone: a key's window must not depend on the machine's zone.
const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})$/i;

const canSign = (key: KeyReference | undefined): boolean => key?.$case === 'file' || key?.$case === 'kms';

/** The key a rotating witness signs with last: the latest notBefore among the keys that can sign, else the first. */
function signsLast(versions: readonly WitnessKeyVersion[]): SingleKeyReference | undefined {
  let last: WitnessKeyVersion | undefined;
  for (const version of versions) {
    if (!canSign(version.key)) continue;
    if (last === undefined || (version.notBefore ?? -Infinity) > (last.notBefore ?? -Infinity))
      last = version;
  }
  return (last ?? versions[0])?.key;
}

/**
 * `keys: [{key | publicKey, notBefore?, notAfter?}, ...]` and the witness's `trustedRoot`: a
 * witness whose keys rotate. Undefined when an entry has a problem (each one reported).
 */
function readKeyRotation(w: ObjectReader, context: BuildContext, issues: Issues): KeyRotation | undefined {
  const before = issues.count;
  const seen = new Map<string, string>();
  const keys =
    w.list(
      'keys',
      (item, itemAt) => {
        const k = ObjectReader.of(issues, itemAt, item, KEY_VERSION_FIELDS);
        if (k === undefined) return undefined;
        let key: KeyReference | undefined;
        if (k.has('key') === k.has('publicKey')) {
          issues.add(itemAt, 'give exactly one of key (file:// or awskms://) and publicKey');
        } else if (k.has('key')) {
          const uri = k.requiredString('key');
          if (uri !== undefined)
            key = take(parseSigningKeyUri(uri, context.baseDir, context.env), issues, k.at('key'));
        } else {
          const pem = k.requiredString('publicKey');
          if (pem !== undefined) key = take(parsePublicKey(pem, context.baseDir), issues, k.at('publicKey'));
        }
        const notBefore = readDateTime(k, 'notBefore');
        const notAfter = readDateTime(k, 'notAfter');
        if (notBefore !== undefined && notAfter !== undefined && notAfter <= notBefore) {
          k.issue('notAfter', 'must be after notBefore');
        }
        if (key === undefined || !isSingleKey(key)) return undefined;
        const same = sameKeyLabel(key);
        const first = seen.get(same);
        if (first !== undefined) {
          issues.add(itemAt, `names the same key as ${first}`);
          return undefined;
        }
        seen.set(same, itemAt);
        return { key, notBefore, notAfter };
      },
      { nonEmpty: true, required: true },
    ) ?? [];
  // trustedRoot: the Sigstore trusted root whose logs and TSAs give signing times.
  const rootUri = w.optionalString('trustedRoot');
  const trustedRootPath =
    rootUri === undefined
      ? undefined
      : take(parseFileUri(rootUri, context.baseDir), issues, w.at('trustedRoot'));
  return issues.count > before ? undefined : { keys, trustedRootPath };
}

const isSingleKey = (key: KeyReference): key is SingleKeyReference =>
  key.$case === 'file' ||
  key.$case === 'kms' ||
  key.$case === 'publicKeyFile' ||
  key.$case === 'publicKeyPem';

/** What makes two entries of one `keys:` list the same key, as far as the config alone tells. */
function sameKeyLabel(key: SingleKeyReference): string {
  switch (key.$case) {
    case 'file':
    case 'publicKeyFile':
      return `file:${key.path}`;
    case 'kms':
      return `kms:${key.endpoint ?? ''}:${key.keyId}`;
    case 'publicKeyPem':
      return `pem:${key.pem.replace(/\s+/g, '')}`;
  }
}

/** `notBefore` / `notAfter`: an RFC 3339 date-time with a zone, as epoch ms. */
function readDateTime(r: ObjectReader, field: string): number | undefined {
  const raw = r.get(field);
  if (raw === undefined) return undefined;
  // A YAML 1.1 timestamp parser would hand over a Date; the loader's core schema gives strings.
  const at =
    raw instanceof Date
      ? raw.getTime()
      : typeof raw === 'string' && DATE_TIME.test(raw)
        ? Date.parse(raw)
        : Number.NaN;
  if (!Number.isNaN(at)) return at;
  r.issue(
    field,
    `must be a date-time with a zone, e.g. "2026-06-01T00:00:00Z"${typeof raw === 'string' ? `, got "${raw.slice(0, 100)}"` : ''}`,
  );
  return undefined;
}

/** The Sigstore services a signing witness calls when it signs; fields absent when not configured. */
const WITNESS_SERVICES = ['transparencyLog', 'timestampAuthority'] as const;

/**
 * `transparencyLog: {url}` and `timestampAuthority: {url}`, each only on a witness with a signing
 * `key`; undefined when one of them has a problem (reported).
 */
function readWitnessServices(
  w: ObjectReader,
  signs: boolean,
  issues: Issues,
): { transparencyLog?: WitnessService; timestampAuthority?: WitnessService } | undefined {
  const before = issues.count;
  const services: { transparencyLog?: WitnessService; timestampAuthority?: WitnessService } = {};
  for (const field of WITNESS_SERVICES) {
    if (!w.has(field)) continue;
    if (!signs) {
      w.issue(field, 'only goes with key: verify-only witnesses do not sign');
      continue;
    }
    const s = ObjectReader.of(issues, w.at(field), w.get(field), ['url']);
    const url = s?.requiredString('url', checkServiceUrl);
    if (url !== undefined) services[field] = { url: url.replace(/\/+$/, '') };
  }
  return issues.count > before ? undefined : services;
}

/** A Rekor or TSA URL: https, or http on a loopback host (a test or sidecar service); nothing secret in it. */
const checkServiceUrl: Check<string> = (value) => {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return `must be an https:// URL, got ${JSON.stringify(value.slice(0, 200))}`;
  }
  if (url.protocol === 'http:' && !isLoopbackHost(url.host)) {
    return 'must be https:// (http:// only on localhost, 127.0.0.0/8 or [::1])';
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return 'must be an https:// URL';
  if (url.username !== '' || url.password !== '') return 'must not carry credentials';
  if (url.search !== '' || url.hash !== '') return 'must have no query or fragment';
  return undefined;
};

/**
 * A certificate witness: `certificate` (file://, a pinned signing certificate), `roots` (file://
 * list, the trust anchors), `certificateChain` (file://, intermediates), `trustedRoot` (file://,
 * where signing times are checked; default public-good) and `requireSignedTime`. Files are read
 * when Signet starts, not here.
 */
function readCertificateWitness(
  w: ObjectReader,
  context: BuildContext,
  issues: Issues,
): KeyReference | undefined {
  const before = issues.count;
  const file = (field: string): string | undefined => {
    const uri = w.optionalString(field);
    return uri === undefined ? undefined : take(parseFileUri(uri, context.baseDir), issues, w.at(field));
  };
  // certificate: the signing certificate itself; without roots it is the only thing trusted.
  const certificatePath = file('certificate');
  // certificateChain: intermediates between the signing certificate and a root.
  const chainPath = file('certificateChain');
  // roots: trust anchors; every signing certificate must chain to one of them.
  const rootPaths =
    w.list(
      'roots',
      (item, itemAt) => {
        const uri = readString(issues, itemAt, item, true);
        return uri === undefined ? undefined : take(parseFileUri(uri, context.baseDir), issues, itemAt);
      },
      { nonEmpty: true },
    ) ?? [];
  // trustedRoot: the Sigstore trusted root whose logs and TSAs give the signing time.
  const trustedRootPath = file('trustedRoot');
  // requireSignedTime: no verified signing time (log entry or RFC 3161 timestamp) → deny.
  const requireSignedTime = w.bool('requireSignedTime', false);
  if (issues.count > before) return undefined;
  return { $case: 'certificate', certificatePath, chainPath, rootPaths, trustedRootPath, requireSignedTime };
}

/**
 * A keyless witness: `{issuer, subject | subjectRegExp, trustedRoot?, github?: {repository?, ref?,
 * trigger?}}`. The pattern is checked (RE2 syntax, whole-subject match) here; the trusted root
 * file is read when Signet starts.
 */
function readKeylessWitness(
  w: ObjectReader,
  context: BuildContext,
  issues: Issues,
): KeyReference | undefined {
  const k = ObjectReader.of(issues, w.at('keyless'), w.get('keyless'), KEYLESS_KEYS);
  if (k === undefined) return undefined;
  const before = issues.count;
  // issuer: the OIDC issuer URL, compared exactly (https://token.actions.githubusercontent.com).
  const issuer = k.requiredString('issuer', checkEndpointLike);
  // subject: the certificate's identity, exactly; subjectRegExp: a pattern it must match whole.
  const exact = k.optionalString('subject');
  const pattern = k.optionalString('subjectRegExp', validatePattern);
  if (k.has('subject') === k.has('subjectRegExp')) {
    issues.add(k.path, 'give exactly one of subject and subjectRegExp');
  }
  // trustedRoot: a private Sigstore's trusted_root.json; absent: the public-good root.
  const rootUri = k.optionalString('trustedRoot');
  const trustedRootPath =
    rootUri === undefined
      ? undefined
      : take(parseFileUri(rootUri, context.baseDir), issues, k.at('trustedRoot'));
  // github: workflow claims Fulcio writes into the certificate.
  let github: GithubClaims | undefined;
  if (k.has('github')) {
    const g = ObjectReader.of(issues, k.at('github'), k.get('github'), GITHUB_KEYS);
    if (g !== undefined) {
      github = {
        repository: g.optionalString('repository'),
        ref: g.optionalString('ref'),
        trigger: g.optionalString('trigger'),
      };
      if (!GITHUB_KEYS.some((field) => g.has(field))) {
        issues.add(g.path, 'give at least one of repository, ref and trigger');
      }
    }
  }
  if (issues.count > before || issuer === undefined) return undefined;
  const subject: KeylessSubject =
    pattern !== undefined ? { $case: 'pattern', pattern } : { $case: 'exact', subject: exact as string };
  return { $case: 'keyless', issuer, subject, trustedRootPath, github };
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
