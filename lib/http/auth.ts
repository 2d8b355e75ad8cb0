/**
 * Who may call Signet over HTTP. Tokens are compared in constant time over their SHA-256 digests
 * (so neither length nor content leaks), and credentials are checked from the request line and
 * headers alone, before a body byte is read.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { canonicalHost } from '../core/reference';

/** A secret as it is kept for comparison: its SHA-256 digest, never the secret in clear. */
export interface SecretDigest {
  readonly digest: Buffer;
}

/** Digests a token once, when the configuration is read. */
export function secretDigest(token: string): SecretDigest {
  return { digest: sha256(token) };
}

const sha256 = (value: string): Buffer => createHash('sha256').update(value, 'utf8').digest();

/** True when `presented` is the secret. The one constant-time comparison of Signet. */
export function secretMatches(presented: string | undefined, secret: SecretDigest): boolean {
  if (presented === undefined || presented === '') return false;
  return timingSafeEqual(sha256(presented), secret.digest);
}

/** The token of an `Authorization: Bearer <token>` header, if that is what the header holds. */
export function bearerToken(authorization: string | undefined): string | undefined {
  if (authorization === undefined) return undefined;
  const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization);
  return match?.[1];
}

/**
 * Access to `/admission` and `/verify`. The local service may require a bearer token and/or a
 * secret first path segment (`/<secretPath>/admission`), both when both are set; the verify
 * Lambda takes its one token either as a bearer token or as the first path segment, because an
 * EKS webhook configuration can carry a URL but no header.
 */
export interface VerificationAccess {
  readonly bearer: SecretDigest | undefined;
  /** Required first path segment (local service). */
  readonly secretPath: string | undefined;
  /** The bearer token may stand as the first path segment instead of the header (Lambda). */
  readonly tokenInPath: boolean;
}

/** Open access: nothing configured (loopback-only by the config check's advice). */
export const OPEN_ACCESS: VerificationAccess = {
  bearer: undefined,
  secretPath: undefined,
  tokenInPath: false,
};

/** The outcome of checking a verification request: the path with any secret segment removed. */
export type AccessCheck =
  | { readonly $case: 'granted'; readonly path: string }
  | { readonly $case: 'refused'; readonly message: string };

/** Checks a verification request's credentials from its path and Authorization header. */
export function checkVerificationAccess(
  access: VerificationAccess,
  path: string,
  authorization: string | undefined,
): AccessCheck {
  let rest = path;
  let viaPath = false;
  if (access.secretPath !== undefined) {
    const prefix = `/${access.secretPath}/`;
    // Both sides hashed: the secret path is a credential like the token.
    const first = firstSegment(path);
    if (!secretMatches(first, secretDigest(access.secretPath)) || !path.startsWith(prefix)) {
      return { $case: 'refused', message: 'this endpoint requires the configured secret path' };
    }
    rest = path.slice(prefix.length - 1);
  } else if (access.tokenInPath && access.bearer !== undefined) {
    const first = firstSegment(path);
    if (first !== undefined && path.split('/').length > 2 && secretMatches(first, access.bearer)) {
      viaPath = true;
      rest = path.slice(first.length + 1);
    }
  }
  if (access.bearer !== undefined && !viaPath && !secretMatches(bearerToken(authorization), access.bearer)) {
    return {
      $case: 'refused',
      message: access.tokenInPath
        ? 'a valid bearer token (or the token as the first path segment) is required'
        : 'a valid bearer token is required',
    };
  }
  return { $case: 'granted', path: rest };
}

function firstSegment(path: string): string | undefined {
  const segments = path.split('/');
  return segments.length > 2 && segments[1] !== '' ? segments[1] : undefined;
}

/**
 * One sender allowed to deliver push events, and for which registries it speaks: the configured
 * events token for every configured registry, the embedded registry's generated token for the
 * embedded host alone.
 */
export interface EventSender {
  readonly name: string;
  readonly token: SecretDigest;
  /** Canonical hosts this sender's events may name; undefined: any configured registry. */
  readonly registries: ReadonlySet<string> | undefined;
}

/** The sender a request's bearer token belongs to, if any. Every sender is compared (no early exit). */
export function eventSenderOf(
  senders: readonly EventSender[],
  authorization: string | undefined,
): EventSender | undefined {
  const presented = bearerToken(authorization);
  let found: EventSender | undefined;
  for (const sender of senders) {
    if (secretMatches(presented, sender.token) && found === undefined) found = sender;
  }
  return found;
}

/** Builds an event sender from a clear token (hashed at once). */
export function eventSender(name: string, token: string, registries?: readonly string[]): EventSender {
  return {
    name,
    token: secretDigest(token),
    registries: registries === undefined ? undefined : new Set(registries.map(canonicalHost)),
  };
}

/**
 * A path fit for logs: no segment that is the secret path or the token (wherever it sits:
 * `/<secret>`, `//<secret>/admission`, `/admission/<secret>`), and no unknown first segment
 * (it may be a mistyped secret).
 */
export function redactPath(path: string, access: VerificationAccess): string {
  const secret = access.secretPath === undefined ? undefined : secretDigest(access.secretPath);
  const segments = path.split('/').map((segment, i) => {
    if (segment === '') return segment;
    const isSecret =
      (secret !== undefined && secretMatches(segment, secret)) ||
      (access.bearer !== undefined && secretMatches(segment, access.bearer));
    const firstUnknown = i === 1 && !KNOWN_FIRST_SEGMENTS.has(segment);
    return isSecret || firstUnknown ? '…' : segment;
  });
  return segments.join('/');
}

/** First path segments that are routes, not secrets. Anything else may be a mistyped secret. */
const KNOWN_FIRST_SEGMENTS: ReadonlySet<string> = new Set(['admission', 'verify', 'events', 'healthz', 'ui']);
