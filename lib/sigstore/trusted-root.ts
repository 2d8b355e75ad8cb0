/**
 * Trusted roots, offline. The public-good root is the copy `@sigstore/tuf` embeds in its
 * `seeds.json` (the TUF seed of tuf-repo-cdn.sigstore.dev), pinned in `public-good-root.ts`: it
 * needs no network and changes only when that file does. A private Sigstore is a
 * `trusted_root.json` file (`application/vnd.dev.sigstore.trustedroot+json`), which replaces the
 * public-good root for the witness that names it.
 */
import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TrustedRoot as TrustedRootMessage } from '@sigstore/protobuf-specs';
import { toTrustMaterial } from '@sigstore/verify';
import { X509Certificate } from '@sigstore/core';
import { ConfigError, type FieldIssue } from '../core/errors';
import { isObject } from '../core/json';
import { PUBLIC_GOOD_TRUSTED_ROOT } from './public-good-root';
import type { TrustedRoot } from './types';

/** Where a trusted root comes from: the embedded public-good root, or a `trusted_root.json`. */
export type TrustedRootSource = 'public-good' | { readonly file: string };

const MEDIA_TYPE_PREFIX = 'application/vnd.dev.sigstore.trustedroot';
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

let publicGood: TrustedRoot | undefined;

/**
 * Loads a trusted root without touching the network. `file` may be a path or a `file://` URI;
 * a relative path is taken from `baseDir` (default: the working directory). Throws ConfigError
 * CONFIG_UNREADABLE when the file cannot be read, CONFIG_INVALID (listing every bad field) when
 * it is not a usable trusted root.
 */
export function loadTrustedRoot(source: TrustedRootSource, baseDir?: string): TrustedRoot {
  if (source === 'public-good') {
    publicGood ??= parseTrustedRoot(PUBLIC_GOOD_TRUSTED_ROOT, 'public-good');
    return publicGood;
  }
  const path = source.file.startsWith('file:')
    ? fileURLToPath(source.file)
    : isAbsolute(source.file)
      ? source.file
      : resolve(baseDir ?? process.cwd(), source.file);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError('CONFIG_UNREADABLE', `trusted root ${path} cannot be read`, { cause: err });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ConfigError('CONFIG_INVALID', `trusted root ${path} is not JSON`, {
      cause: err,
      issues: [{ path, message: 'is not JSON' }],
    });
  }
  return parseTrustedRoot(json, path);
}

/**
 * Checks a parsed `trusted_root.json` and turns it into trust material. Every problem is
 * collected before the ConfigError is thrown, each under its JSON path.
 */
export function parseTrustedRoot(json: unknown, source: string): TrustedRoot {
  const issues: FieldIssue[] = [];
  const issue = (path: string, message: string): void => {
    issues.push({ path, message });
  };
  if (!isObject(json)) {
    issue('$', 'must be a JSON object');
  } else {
    const mediaType = json['mediaType'];
    if (typeof mediaType !== 'string' || !mediaType.startsWith(MEDIA_TYPE_PREFIX)) {
      issue('mediaType', `must be a ${MEDIA_TYPE_PREFIX} media type`);
    }
    checkAuthorities(json['certificateAuthorities'], 'certificateAuthorities', true, issue);
    checkAuthorities(json['timestampAuthorities'], 'timestampAuthorities', false, issue);
    checkLogs(json['tlogs'], 'tlogs', issue);
    checkLogs(json['ctlogs'], 'ctlogs', issue);
  }
  if (issues.length === 0) {
    try {
      return { source, material: toTrustMaterial(TrustedRootMessage.fromJSON(json)) };
    } catch (err) {
      issue('$', `cannot be used: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  throw new ConfigError('CONFIG_INVALID', `trusted root ${source} is invalid`, { issues });
}

type Issue = (path: string, message: string) => void;

function checkAuthorities(value: unknown, path: string, required: boolean, issue: Issue): void {
  if (value === undefined && !required) return;
  if (!Array.isArray(value)) {
    issue(path, 'must be a list');
    return;
  }
  value.forEach((ca: unknown, i) => {
    const at = `${path}[${i}].certChain.certificates`;
    const certs = isObject(ca) && isObject(ca['certChain']) ? ca['certChain']['certificates'] : undefined;
    if (!Array.isArray(certs) || certs.length === 0) {
      issue(at, 'must list the CA certificates');
      return;
    }
    certs.forEach((cert: unknown, j) => {
      const raw = isObject(cert) ? cert['rawBytes'] : undefined;
      if (typeof raw !== 'string' || !BASE64.test(raw)) {
        issue(`${at}[${j}].rawBytes`, 'must be a base64 DER certificate');
        return;
      }
      try {
        X509Certificate.parse(Buffer.from(raw, 'base64'));
      } catch {
        issue(`${at}[${j}].rawBytes`, 'is not an X.509 certificate');
      }
    });
  });
}

function checkLogs(value: unknown, path: string, issue: Issue): void {
  if (value === undefined) return;
  if (!Array.isArray(value)) {
    issue(path, 'must be a list');
    return;
  }
  value.forEach((log: unknown, i) => {
    const key = isObject(log) ? log['publicKey'] : undefined;
    const raw = isObject(key) ? key['rawBytes'] : undefined;
    if (typeof raw !== 'string' || raw.length === 0 || !BASE64.test(raw)) {
      issue(`${path}[${i}].publicKey.rawBytes`, 'must be a base64 DER public key');
    }
    const logId = isObject(log) ? log['logId'] : undefined;
    const keyId = isObject(logId) ? logId['keyId'] : undefined;
    if (typeof keyId !== 'string' || keyId.length === 0 || !BASE64.test(keyId)) {
      issue(`${path}[${i}].logId.keyId`, 'must be the base64 log id');
    }
  });
}
