/**
 * Witness key URIs, in cosign's spellings: `file://<path>` for a local PEM file and
 * `awskms://[host:port]/<key id | key ARN | alias/name | alias ARN>` for an AWS KMS key. Parsing
 * never touches the file system or the network: key files may not exist yet.
 */
import { createPublicKey } from 'node:crypto';
import * as path from 'node:path';
import type { KeyReference } from './types';
import { checkRegistryHost, isAwsRegion, isLoopbackHost } from './hosts';

/** A parsed value, or the reason it could not be parsed. */
export type Parsed<T> =
  { readonly ok: true; readonly value: T } | { readonly ok: false; readonly problem: string };

const ok = <T>(value: T): Parsed<T> => ({ ok: true, value });
const fail = <T>(problem: string): Parsed<T> => ({ ok: false, problem });

const KEY_URI_FORMS =
  'file://<path to a PKCS#8 PEM private key> or awskms://[host:port]/<key id, key ARN, alias/<name> or alias ARN>';

/** The absolute path of a `file://` URI: relative paths resolve against `baseDir`. */
export function parseFileUri(uri: string, baseDir: string): Parsed<string> {
  if (!uri.startsWith('file://')) return fail(`must be a file://<path> URI, got ${JSON.stringify(uri)}`);
  const rest = uri.slice('file://'.length);
  if (rest.trim() === '') return fail('file:// needs a path, e.g. file://keys/release.pem');
  if (rest.includes('\0')) return fail('the path must not contain NUL characters');
  return ok(path.resolve(baseDir, rest));
}

const UUID = '[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}';
const KEY_ID = new RegExp(`^(?:${UUID}|mrk-[0-9a-fA-F]{32})$`);
const ALIAS_NAME = /^alias\/[A-Za-z0-9/_-]+$/;
const KMS_ARN = /^arn:(aws(?:-[a-z]+)*):kms:([^:]*):([^:]*):(.*)$/;

/** A KMS key identifier and the region its ARN names, if it is an ARN. */
export interface KmsKeyId {
  readonly keyId: string;
  readonly arnRegion: string | undefined;
}

function checkAliasName(alias: string): string | undefined {
  if (!ALIAS_NAME.test(alias) || alias.length > 256) {
    return `"${alias}" is not a KMS alias name (alias/ followed by letters, digits, "/", "_" or "-"; at most 256 characters)`;
  }
  if (alias.startsWith('alias/aws/')) {
    return `"${alias}" names an AWS managed key, which is symmetric and cannot sign`;
  }
  return undefined;
}

/**
 * Checks the shape of an AWS KMS key identifier: a key id (UUID or multi-Region `mrk-…`), a key
 * ARN, an alias name (`alias/…`) or an alias ARN.
 */
export function parseKmsKeyId(keyId: string): Parsed<KmsKeyId> {
  if (keyId.startsWith('alias/')) {
    const problem = checkAliasName(keyId);
    return problem === undefined ? ok({ keyId, arnRegion: undefined }) : fail(problem);
  }
  if (keyId.startsWith('arn:')) {
    const arn = KMS_ARN.exec(keyId);
    if (arn === null) {
      return fail(
        `"${keyId}" is not a KMS ARN (arn:aws:kms:<region>:<account>:key/<key id> or :alias/<name>)`,
      );
    }
    const [, , region = '', account = '', resource = ''] = arn;
    if (!isAwsRegion(region)) return fail(`the ARN's region "${region}" is not an AWS region`);
    if (!/^\d{12}$/.test(account)) return fail(`the ARN's account "${account}" must be 12 digits`);
    if (resource.startsWith('key/')) {
      if (!KEY_ID.test(resource.slice('key/'.length))) {
        return fail(
          `the ARN's key id "${resource.slice('key/'.length)}" must be a UUID or mrk-<32 hex digits>`,
        );
      }
    } else if (resource.startsWith('alias/')) {
      const problem = checkAliasName(resource);
      if (problem !== undefined) return fail(problem);
    } else {
      return fail(`the ARN must end in key/<key id> or alias/<name>, got "${resource}"`);
    }
    return ok({ keyId, arnRegion: region });
  }
  if (KEY_ID.test(keyId)) return ok({ keyId, arnRegion: undefined });
  return fail(
    `"${keyId}" is not a KMS key id (UUID or mrk-<32 hex digits>), key ARN, alias/<name> or alias ARN`,
  );
}

/** The region the AWS SDK would use: `AWS_REGION`, then `AWS_DEFAULT_REGION`. */
export function envRegion(env: NodeJS.ProcessEnv): string | undefined {
  for (const name of ['AWS_REGION', 'AWS_DEFAULT_REGION']) {
    const value = env[name];
    if (value !== undefined && value.trim() !== '') return value.trim();
  }
  return undefined;
}

/** Parses `awskms://[host:port]/<key>` (cosign's form); the host, when given, is the KMS endpoint. */
export function parseAwsKmsUri(uri: string, env: NodeJS.ProcessEnv): Parsed<KeyReference> {
  const rest = uri.slice('awskms://'.length);
  const slash = rest.indexOf('/');
  if (slash < 0)
    return fail(`must be awskms:///<key> or awskms://host:port/<key>, got ${JSON.stringify(uri)}`);
  const authority = rest.slice(0, slash);
  const keyId = rest.slice(slash + 1);
  if (authority.startsWith('arn:') || authority === 'alias') {
    return fail(`the key goes after a third slash: "awskms:///${rest}"`);
  }
  let endpoint: string | undefined;
  if (authority !== '') {
    const problem = checkRegistryHost(authority);
    if (problem !== undefined) return fail(`the endpoint host ${problem}`);
    endpoint = `${isLoopbackHost(authority) ? 'http' : 'https'}://${authority}`;
  }
  if (keyId === '') return fail('names no key: awskms:///<key id, key ARN, alias/<name> or alias ARN>');
  const parsed = parseKmsKeyId(keyId);
  if (!parsed.ok) return parsed;
  return ok({ $case: 'kms', keyId, region: parsed.value.arnRegion ?? envRegion(env), endpoint });
}

/** Parses a witness's `key`: a private key the witness signs with. */
export function parseSigningKeyUri(
  uri: string,
  baseDir: string,
  env: NodeJS.ProcessEnv,
): Parsed<KeyReference> {
  if (uri.startsWith('file://')) {
    const file = parseFileUri(uri, baseDir);
    return file.ok ? ok({ $case: 'file', path: file.value }) : file;
  }
  if (uri.startsWith('awskms://')) return parseAwsKmsUri(uri, env);
  if (uri.trimStart().startsWith('-----BEGIN')) {
    return fail(
      'inline keys are not accepted here: put a private key in a file (file://...) and a public key under publicKey',
    );
  }
  if (uri.startsWith('arn:') || uri.startsWith('alias/'))
    return fail(`a KMS key is written "awskms:///${uri}"`);
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(uri);
  if (scheme !== null) {
    return fail(`the ${scheme[1]}:// scheme is not supported; use ${KEY_URI_FORMS}`);
  }
  return fail(`must be ${KEY_URI_FORMS}; for a local file write "file://${uri}"`);
}

const PUBLIC_KEY_CURVES = ['prime256v1', 'secp384r1'];

/** Parses a witness's `publicKey`: a `file://` URI or an inline PEM SPKI public key (RSA or EC P-256/P-384). */
export function parsePublicKey(value: string, baseDir: string): Parsed<KeyReference> {
  if (value.startsWith('file://')) {
    const file = parseFileUri(value, baseDir);
    return file.ok ? ok({ $case: 'publicKeyFile', path: file.value }) : file;
  }
  const pem = value.trim();
  if (pem.startsWith('-----BEGIN')) {
    if (/PRIVATE KEY-----/.test(pem)) {
      return fail('is a private key: never put a private key in the configuration; use key: file://<path>');
    }
    if (pem.startsWith('-----BEGIN CERTIFICATE-----')) {
      return fail('is a certificate; use certificate: file://<path>');
    }
    if (!pem.startsWith('-----BEGIN PUBLIC KEY-----') || !pem.endsWith('-----END PUBLIC KEY-----')) {
      return fail('must be a PEM SPKI public key (-----BEGIN PUBLIC KEY----- ... -----END PUBLIC KEY-----)');
    }
    try {
      const key = createPublicKey({ key: pem, format: 'pem' });
      const type = key.asymmetricKeyType;
      const curve = key.asymmetricKeyDetails?.namedCurve;
      if (type === 'ec' && curve !== undefined && !PUBLIC_KEY_CURVES.includes(curve)) {
        return fail(`is an EC key on ${curve}; Signet verifies P-256 and P-384 keys`);
      }
      if (type !== 'rsa' && type !== 'ec')
        return fail(`is a ${String(type)} key; Signet verifies RSA and EC keys`);
    } catch (err) {
      return fail(`is not a valid PEM public key (${err instanceof Error ? err.message : String(err)})`);
    }
    return ok({ $case: 'publicKeyPem', pem: `${pem}\n` });
  }
  if (value.startsWith('awskms://')) return fail('a KMS key goes under key:, not publicKey:');
  return fail(
    'must be file://<path to a PEM public key> or an inline PEM public key (-----BEGIN PUBLIC KEY-----)',
  );
}
