/** The knobs of a registry client. */
import type { RetryObserver, RetryPolicy } from '../core/retry';
import type { Telemetry } from '../core/telemetry';
import type { EcrCredentialsProvider } from './ecr-auth';
import type { HostLookup } from './http';

/** How registry clients behave; every field has a default. */
export interface RegistryClientOptions {
  /** Retries of throttling, 5xx and connection failures; default `DEFAULT_RETRY`. */
  readonly retry?: RetryPolicy;
  /** Told about every retry (tests and metrics count them). */
  readonly onRetry?: RetryObserver;
  /** Per HTTP request, body included; default 30 s. */
  readonly timeoutMs?: number;
  /** Largest manifest read or written; default 4 MiB (the distribution limit). */
  readonly maxManifestBytes?: number;
  /**
   * Largest blob read; default 16 MiB (Signet reads configs and signature payloads, never layers).
   * A read given the descriptor's size is bounded by that size, and refused when it is over this.
   */
  readonly maxBlobBytes?: number;
  /** Where ECR credentials come from; default one `EcrAuthorizationTokens` per factory. */
  readonly ecrCredentials?: EcrCredentialsProvider;
  readonly userAgent?: string;
  /**
   * How long a registry that answered the referrers API with 404 is taken not to have it (no
   * more requests to it); default 10 minutes. The OCI distribution spec forbids a registry that
   * implements the API to answer 404, so the answer is about the registry, not the digest.
   */
  readonly referrersProbeTtlMs?: number;
  /**
   * Resolves host names for the redirect and token-realm checks (is a target link-local, or
   * loopback?) and for deciding whether the registry is on loopback; default the system resolver.
   * Connections themselves always use the system resolver.
   */
  readonly lookup?: HostLookup;
  /** Told about every request (method, status, duration): metrics. */
  readonly telemetry?: Telemetry;
}
