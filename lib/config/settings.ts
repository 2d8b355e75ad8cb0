/** The `admission`, `server`, `journal`, `reverify` and `ledger` sections: settings with defaults. */
import * as path from 'node:path';
import type { BuildContext } from './build';
import { DEFAULTS } from './defaults';
import { isLoopbackHost } from './hosts';
import { parseFileUri } from './keyref';
import type {
  AdmissionSettings,
  JournalSettings,
  LedgerSettings,
  ReverifySettings,
  ServerSettings,
  TlsSettings,
} from './types';
import { Issues, ObjectReader, readSecret } from './validate';

const K8S_NAMESPACE = /^[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?$/;

/** Reads `admission`, defaults filled. */
export function readAdmission(value: unknown, issues: Issues, at = 'admission'): AdmissionSettings {
  const a =
    value === undefined
      ? undefined
      : ObjectReader.of(issues, at, value, [
          'noMatchingPolicy',
          'cacheTtlSeconds',
          'cacheMaxEntries',
          'excludeNamespaces',
          'deadlineSeconds',
          'maxSignatures',
          'maxReviewBytes',
        ]);
  const d = DEFAULTS.admission;
  if (a === undefined) return { ...d, excludeNamespaces: [] };
  return {
    // deadlineSeconds: a review not decided by then is denied (Kubernetes waits 10 s by default, at most 30).
    deadlineMs: a.int('deadlineSeconds', d.deadlineMs / 1000, { min: 1, max: 30 }) * 1000,
    // maxSignatures: `.sig` layers (and bundle referrers) of one digest considered; more are ignored.
    maxSignatures: a.int('maxSignatures', d.maxSignatures, { min: 1, max: 1024 }),
    // maxReviewBytes: bytes read from registries for one review; a review past it denies.
    maxReviewBytes: a.int('maxReviewBytes', d.maxReviewBytes, { min: 64 * 1024, max: 256 * 1024 * 1024 }),
    // noMatchingPolicy: images no enabled policy covers are denied, allowed, or allowed with a warning.
    noMatchingPolicy: a.oneOf('noMatchingPolicy', ['deny', 'allow', 'warn'], d.noMatchingPolicy),
    // cacheTtlSeconds: how long a positive verification is reused; 0 disables the cache.
    cacheTtlSeconds: a.int('cacheTtlSeconds', d.cacheTtlSeconds, { min: 0, max: 86_400 }),
    // cacheMaxEntries: bound on cached verification results.
    cacheMaxEntries: a.int('cacheMaxEntries', d.cacheMaxEntries, { min: 1, max: 10_000_000 }),
    // excludeNamespaces: Kubernetes namespaces never checked (exact names, e.g. kube-system).
    excludeNamespaces:
      a.stringList('excludeNamespaces', {
        check: (ns) => (K8S_NAMESPACE.test(ns) ? undefined : `"${ns}" is not a Kubernetes namespace name`),
      }) ?? [],
  };
}

const SECRET_PATH = /^[A-Za-z0-9._~-]{1,256}$/;

/** Reads `server`, defaults filled. */
export function readServer(
  value: unknown,
  context: BuildContext,
  issues: Issues,
  at = 'server',
): ServerSettings {
  const s =
    value === undefined
      ? undefined
      : ObjectReader.of(issues, at, value, [
          'port',
          'host',
          'maxBodyBytes',
          'bearerToken',
          'bearerTokenEnv',
          'secretPath',
          'secretPathEnv',
          'eventsToken',
          'eventsTokenEnv',
          'maxInFlight',
          'tls',
          'shutdownGraceSeconds',
        ]);
  const d = DEFAULTS.server;
  if (s === undefined)
    return { ...d, bearerToken: undefined, secretPath: undefined, eventsToken: undefined, tls: undefined };
  const bearerToken = readSecret(s, 'bearerToken', 'bearerTokenEnv', context.env);
  // eventsToken / eventsTokenEnv: token every /events/* route requires; without one only the
  // embedded registry (holding a token Signet generates at start) can deliver events.
  const eventsToken = readSecret(s, 'eventsToken', 'eventsTokenEnv', context.env);
  if (eventsToken !== undefined && eventsToken.length < 16) {
    s.issue(
      s.has('eventsToken') ? 'eventsToken' : 'eventsTokenEnv',
      'must be at least 16 characters (e.g. `openssl rand -hex 32`)',
    );
  }
  if (eventsToken !== undefined && eventsToken === bearerToken) {
    s.issue(
      s.has('eventsToken') ? 'eventsToken' : 'eventsTokenEnv',
      'must differ from bearerToken: a webhook caller must not be able to make Signet sign',
    );
  }
  return {
    eventsToken,
    // tls: {certFile, keyFile, clientCaFile?}: serve HTTPS (Kubernetes calls webhooks over HTTPS only).
    tls: readTls(s.get('tls'), s.at('tls'), context, issues),
    // shutdownGraceSeconds: on SIGTERM, how long reviews and signings in flight may finish.
    shutdownGraceMs: s.int('shutdownGraceSeconds', d.shutdownGraceMs / 1000, { min: 0, max: 600 }) * 1000,
    // maxInFlight: requests handled at once; beyond it 503 with Retry-After, before reading the body.
    maxInFlight: s.int('maxInFlight', d.maxInFlight, { min: 1, max: 100_000 }),
    // port: listen port (0 picks a free one).
    port: s.int('port', d.port, { min: 0, max: 65_535 }),
    // host: listen address; loopback by default.
    host:
      s.optionalString('host', (h) => (/\s|\//.test(h) ? `"${h}" is not a listen address` : undefined)) ??
      d.host,
    // maxBodyBytes: largest request body accepted (AdmissionReviews, notifications).
    maxBodyBytes: s.int('maxBodyBytes', d.maxBodyBytes, { min: 1024, max: 64 * 1024 * 1024 }),
    // bearerToken / bearerTokenEnv: token required on /admission and /verify (inline or from the environment).
    bearerToken,
    // secretPath / secretPathEnv: secret first path segment required on /admission and /verify
    // (managed clusters cannot give the apiserver a bearer token: the webhook URL carries it).
    secretPath: readSecretPath(s, context),
  };
}

/** Reads `journal`, defaults filled; `path` resolves against the config file's directory. */
export function readJournal(
  value: unknown,
  context: BuildContext,
  issues: Issues,
  at = 'journal',
): JournalSettings {
  const j =
    value === undefined
      ? undefined
      : ObjectReader.of(issues, at, value, [
          'path',
          'maxAttempts',
          'retryBaseSeconds',
          'retryMaxSeconds',
          'concurrency',
        ]);
  const d = DEFAULTS.journal;
  const defaultPath = path.resolve(context.baseDir, '.signet', d.file);
  if (j === undefined) return { ...withoutFile(d), path: defaultPath };
  // path: the SQLite file of accepted pushes; relative to the config file's directory.
  const file = j.optionalString('path');
  // maxAttempts: attempts at one push before it is dead-lettered (`signet failures`).
  const maxAttempts = j.int('maxAttempts', d.maxAttempts, { min: 1, max: 100 });
  // retryBaseSeconds / retryMaxSeconds: exponential backoff between attempts, with jitter.
  const retryBaseMs = Math.round(
    j.number('retryBaseSeconds', d.retryBaseMs / 1000, { min: 0.01, max: 3600 }) * 1000,
  );
  const retryMaxMs = Math.round(
    j.number('retryMaxSeconds', d.retryMaxMs / 1000, { min: 0.01, max: 86_400 }) * 1000,
  );
  if (retryMaxMs < retryBaseMs) j.issue('retryMaxSeconds', 'must not be less than retryBaseSeconds');
  return {
    path: file === undefined ? defaultPath : path.resolve(context.baseDir, file),
    maxAttempts,
    retryBaseMs,
    retryMaxMs,
    // concurrency: pushes signed at once.
    concurrency: j.int('concurrency', d.concurrency, { min: 1, max: 256 }),
  };
}

const withoutFile = ({ file: _file, ...rest }: typeof DEFAULTS.journal) => rest;

/** Reads `reverify`; undefined when the section is absent (no re-verification). */
export function readReverify(value: unknown, issues: Issues, at = 'reverify'): ReverifySettings | undefined {
  if (value === undefined) return undefined;
  const r = ObjectReader.of(issues, at, value, [
    'intervalSeconds',
    'windowDays',
    'concurrency',
    'webhookUrl',
  ]);
  if (r === undefined) return undefined;
  const d = DEFAULTS.reverify;
  return {
    // intervalSeconds: time between rounds (AWS: rounded up to whole minutes).
    intervalMs: Math.round(r.number('intervalSeconds', d.intervalMs / 1000, { min: 1, max: 86_400 }) * 1000),
    // windowDays: images admitted within this many days are checked again.
    windowDays: r.number('windowDays', d.windowDays, { min: 0.001, max: 365 }),
    // concurrency: images re-checked at once.
    concurrency: r.int('concurrency', d.concurrency, { min: 1, max: 64 }),
    // webhookUrl: where the local service POSTs `Image Trust Lost` (https; http only on loopback).
    webhookUrl: r.optionalString('webhookUrl', checkWebhookUrl),
  };
}

/**
 * A finding webhook must not become a way to reach what Signet can reach: https only (http on a
 * loopback host), no credentials in the URL (they would end up in logs).
 */
export function checkWebhookUrl(value: string): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return `"${value}" is not a URL`;
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return 'must be an https:// URL';
  if (url.protocol === 'http:' && !isLoopbackHost(url.host))
    return 'must be https:// (plain http only to a loopback host: 127.0.0.1, localhost, [::1])';
  if (url.username !== '' || url.password !== '') return 'must not carry credentials';
  if (url.hash !== '') return 'must not have a #fragment';
  return undefined;
}

/** Reads `ledger`, defaults filled. */
export function readLedger(value: unknown, issues: Issues, at = 'ledger'): LedgerSettings {
  const d = DEFAULTS.ledger;
  if (value === undefined) return { ...d };
  const l = ObjectReader.of(issues, at, value, ['retentionDays']);
  if (l === undefined) return { ...d };
  // retentionDays: decisions and resolved findings older than this are deleted; signatures are kept.
  return { retentionDays: l.int('retentionDays', d.retentionDays, { min: 1, max: 3650 }) };
}

function readTls(value: unknown, at: string, context: BuildContext, issues: Issues): TlsSettings | undefined {
  if (value === undefined) return undefined;
  const t = ObjectReader.of(issues, at, value, ['certFile', 'keyFile', 'clientCaFile']);
  if (t === undefined) return undefined;
  const file = (key: string, required: boolean): string | undefined => {
    const raw = required ? t.requiredString(key) : t.optionalString(key);
    if (raw === undefined) return undefined;
    const parsed = parseFileUri(raw.startsWith('file://') ? raw : `file://${raw}`, context.baseDir);
    if (!parsed.ok) {
      t.issue(key, parsed.problem);
      return undefined;
    }
    return parsed.value;
  };
  // certFile, keyFile: PEM serving certificate (chain) and key; clientCaFile: PEM CAs for mutual TLS.
  const certFile = file('certFile', true);
  const keyFile = file('keyFile', true);
  const clientCaFile = file('clientCaFile', false);
  if (certFile === undefined || keyFile === undefined) return undefined;
  return { certFile, keyFile, clientCaFile };
}

/** `secretPath` inline or from the environment (`secretPathEnv`), checked as one URL path segment. */
function readSecretPath(s: ObjectReader, context: BuildContext): string | undefined {
  const value = readSecret(s, 'secretPath', 'secretPathEnv', context.env);
  if (value === undefined) return undefined;
  if (!SECRET_PATH.test(value)) {
    s.issue(
      s.has('secretPath') ? 'secretPath' : 'secretPathEnv',
      'must be one URL path segment of letters, digits, ".", "_", "~" or "-" (at most 256)',
    );
    return undefined;
  }
  return value;
}
