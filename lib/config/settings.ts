/** The `admission` and `server` sections: settings with defaults. */
import type { BuildContext } from './build';
import { DEFAULTS } from './defaults';
import type { AdmissionSettings, ServerSettings } from './types';
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
        ]);
  const d = DEFAULTS.admission;
  if (a === undefined) return { ...d, excludeNamespaces: [] };
  return {
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
        ]);
  const d = DEFAULTS.server;
  if (s === undefined) return { ...d, bearerToken: undefined, secretPath: undefined };
  return {
    // port: listen port (0 picks a free one).
    port: s.int('port', d.port, { min: 0, max: 65_535 }),
    // host: listen address; loopback by default.
    host:
      s.optionalString('host', (h) => (/\s|\//.test(h) ? `"${h}" is not a listen address` : undefined)) ??
      d.host,
    // maxBodyBytes: largest request body accepted (AdmissionReviews, notifications).
    maxBodyBytes: s.int('maxBodyBytes', d.maxBodyBytes, { min: 1024, max: 64 * 1024 * 1024 }),
    // bearerToken / bearerTokenEnv: token required on /admission and /verify (inline or from the environment).
    bearerToken: readSecret(s, 'bearerToken', 'bearerTokenEnv', context.env),
    // secretPath: secret first path segment required on /admission and /verify.
    secretPath: s.optionalString('secretPath', (p) =>
      SECRET_PATH.test(p)
        ? undefined
        : 'must be one URL path segment of letters, digits, ".", "_", "~" or "-"',
    ),
  };
}
