/**
 * Signet's error classes. Each has a fixed list of codes and keeps the underlying `cause`.
 * SDK and HTTP errors are converted where they enter; `httpStatusOf` is the one place that maps
 * an error to an HTTP status.
 */

/** One problem with one field of some input, by path (`signingRules[2].algorithm`). */
export interface FieldIssue {
  readonly path: string;
  readonly message: string;
}

/** Base of every Signet error: a stable machine-readable `code` next to the human message. */
export abstract class SignetError<Code extends string = string> extends Error {
  abstract override readonly name: string;
  readonly code: Code;

  constructor(code: Code, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

export type ConfigErrorCode =
  | 'CONFIG_INVALID'
  | 'CONFIG_UNREADABLE'
  | 'KEY_INVALID'
  | 'KEY_UNREADABLE'
  | 'ALGORITHM_MISMATCH'
  | 'WITNESS_UNKNOWN'
  | 'RULE_UNKNOWN'
  /** The address the local service (or its embedded registry) is to listen on is taken. */
  | 'PORT_IN_USE'
  /** The embedded registry's binary (`docker-registry` or `registry`) is not installed or not on PATH. */
  | 'REGISTRY_BINARY_MISSING';

/** The configuration (file, keys, witnesses) is wrong; `issues` lists every bad field at once. */
export class ConfigError extends SignetError<ConfigErrorCode> {
  override readonly name = 'ConfigError';
  readonly issues: readonly FieldIssue[];

  constructor(
    code: ConfigErrorCode,
    message: string,
    options?: { cause?: unknown; issues?: readonly FieldIssue[] },
  ) {
    super(code, message, options);
    this.issues = options?.issues ?? [];
  }
}

export type InputErrorCode =
  | 'EVENT_INVALID'
  | 'REFERENCE_INVALID'
  | 'ADMISSION_REVIEW_INVALID'
  | 'REQUEST_INVALID'
  | 'BODY_TOO_LARGE'
  | 'UNSUPPORTED_MEDIA_TYPE';

/** A caller sent something malformed (an event, a reference, an AdmissionReview); `field` names where. */
export class InputError extends SignetError<InputErrorCode> {
  override readonly name = 'InputError';
  readonly field: string;

  constructor(code: InputErrorCode, field: string, message: string, options?: { cause?: unknown }) {
    super(code, `${field}: ${message}`, options);
    this.field = field;
  }
}

export type RegistryErrorCode =
  | 'UNAUTHORIZED'
  | 'DENIED'
  | 'NOT_FOUND'
  | 'RATE_LIMITED'
  | 'UNAVAILABLE'
  | 'UNREACHABLE'
  | 'PROTOCOL'
  | 'DIGEST_MISMATCH'
  /** A manifest PUT referenced a blob the registry does not (or, mid-upload by another writer, not yet) link. */
  | 'BLOB_UNKNOWN'
  | 'NOT_ALLOWED'
  | 'TOO_LARGE'
  /** The caller's byte budget (shared by a review's reads) ran out while reading. */
  | 'BUDGET_EXCEEDED'
  /** The caller's signal (a review's deadline) ended the read. */
  | 'ABORTED';

/** A registry answered with an error, broke the protocol, or could not be reached. */
export class RegistryError extends SignetError<RegistryErrorCode> {
  override readonly name = 'RegistryError';
  readonly registry: string;
  readonly status: number | undefined;
  /** How long the registry asked us to wait (Retry-After), when it did. */
  readonly retryAfterMs: number | undefined;

  constructor(
    code: RegistryErrorCode,
    registry: string,
    message: string,
    options?: { cause?: unknown; status?: number; retryAfterMs?: number },
  ) {
    super(code, `${registry}: ${message}`, options);
    this.registry = registry;
    this.status = options?.status;
    this.retryAfterMs = options?.retryAfterMs;
  }

  /** Worth another attempt: throttling, server errors and connection failures. */
  get retryable(): boolean {
    return this.code === 'RATE_LIMITED' || this.code === 'UNAVAILABLE' || this.code === 'UNREACHABLE';
  }
}

export type KeyErrorCode =
  | 'KMS_SIGN_FAILED'
  | 'KMS_THROTTLED'
  | 'KMS_DISABLED'
  | 'KMS_INVALID_STATE'
  | 'KMS_NOT_FOUND'
  | 'KMS_ACCESS_DENIED'
  /** The AWS SDK found no credentials at all (no environment, profile, SSO or instance role). */
  | 'AWS_CREDENTIALS_MISSING'
  | 'KMS_UNAVAILABLE'
  | 'KEY_UNAVAILABLE'
  | 'SIGN_FAILED';

/** A key could not be used: KMS refused or failed, or a key file vanished. */
export class KeyError extends SignetError<KeyErrorCode> {
  override readonly name = 'KeyError';
  readonly keyId: string;

  constructor(code: KeyErrorCode, keyId: string, message: string, options?: { cause?: unknown }) {
    super(code, `${keyId}: ${message}`, options);
    this.keyId = keyId;
  }

  get retryable(): boolean {
    return this.code === 'KMS_THROTTLED' || this.code === 'KMS_UNAVAILABLE';
  }
}

export type PublishErrorCode = 'CONFLICT_RETRIES_EXHAUSTED' | 'SIGNATURE_MANIFEST_INVALID';

/** Writing a signature into the registry did not converge. */
export class PublishError extends SignetError<PublishErrorCode> {
  override readonly name = 'PublishError';
}

export type SigstoreServiceErrorCode =
  /** The transparency log (Rekor) is unreachable, timed out, throttled or failing (5xx): retried. */
  | 'TLOG_UNAVAILABLE'
  /** The transparency log refused the entry (a 4xx other than throttling). */
  | 'TLOG_REFUSED'
  /** The log's answer is not the entry we sent, too large, malformed, or redirected elsewhere. */
  | 'TLOG_ANSWER_INVALID'
  /** The timestamp authority is unreachable, timed out, throttled or failing (5xx): retried. */
  | 'TSA_UNAVAILABLE'
  /** The timestamp authority refused the request (a 4xx, or a TimeStampResp with status rejection). */
  | 'TSA_REFUSED'
  /** The timestamp does not parse, is too large, or does not cover the signature with our nonce. */
  | 'TSA_ANSWER_INVALID';

/** A Sigstore service a witness signs with (a Rekor log, an RFC 3161 TSA) failed or answered wrong. */
export class SigstoreServiceError extends SignetError<SigstoreServiceErrorCode> {
  override readonly name = 'SigstoreServiceError';
  /** `scheme://host[:port]` of the service: never its path, which may carry a token. */
  readonly service: string;

  constructor(
    code: SigstoreServiceErrorCode,
    service: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(code, `${service}: ${message}`, options);
    this.service = service;
  }

  /** Worth another attempt: an outage, a timeout, throttling. */
  get retryable(): boolean {
    return this.code === 'TLOG_UNAVAILABLE' || this.code === 'TSA_UNAVAILABLE';
  }
}

export type AccessErrorCode = 'UNAUTHORIZED' | 'NOT_FOUND' | 'METHOD_NOT_ALLOWED' | 'OVERLOADED';

/** A request Signet will not serve: no valid credentials, no such route, or too many at once. */
export class AccessError extends SignetError<AccessErrorCode> {
  override readonly name = 'AccessError';
}

/** True when another attempt at the same operation may succeed. */
export function isRetryable(err: unknown): boolean {
  return (
    (err instanceof RegistryError || err instanceof KeyError || err instanceof SigstoreServiceError) &&
    err.retryable
  );
}

/**
 * The HTTP status a Signet edge answers for an error. Input errors are the caller's fault (4xx);
 * everything else is 5xx so that registries and EventBridge deliver the event again.
 */
export function httpStatusOf(err: unknown): number {
  if (err instanceof InputError) {
    switch (err.code) {
      case 'BODY_TOO_LARGE':
        return 413;
      case 'UNSUPPORTED_MEDIA_TYPE':
        return 415;
      case 'EVENT_INVALID':
      case 'REFERENCE_INVALID':
      case 'ADMISSION_REVIEW_INVALID':
      case 'REQUEST_INVALID':
        return 400;
    }
  }
  if (err instanceof AccessError) {
    switch (err.code) {
      case 'UNAUTHORIZED':
        return 401;
      case 'NOT_FOUND':
        return 404;
      case 'METHOD_NOT_ALLOWED':
        return 405;
      case 'OVERLOADED':
        return 503;
    }
  }
  if (err instanceof ConfigError) return 500;
  if (err instanceof RegistryError || err instanceof KeyError || err instanceof SigstoreServiceError)
    return err.retryable ? 503 : 502;
  return 500;
}

/** A short, safe description of any thrown value. */
export function describeError(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
