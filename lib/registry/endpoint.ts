/** Where a registry host is reached, and with which credentials. */
import type { RegistryConfig } from '../config/types';
import { canonicalHost } from '../core/reference';
import { parseEcrHost } from './ecr-auth';

/** The registry settings a client needs: the subset of `RegistryConfig` about reaching it. */
export type RegistryEndpoint = Pick<RegistryConfig, 'host' | 'insecure' | 'auth'>;

/** `https://host`, or `http://host` only for a registry marked insecure. Docker Hub's API host is `registry-1.docker.io`. */
export function registryBaseUrl(host: string, insecure: boolean): string {
  const apiHost = host === 'docker.io' ? 'registry-1.docker.io' : host;
  return `${insecure ? 'http' : 'https'}://${apiHost}`;
}

/**
 * The settings for a host: the configured registry (hosts compared canonically), else ECR auth for
 * an `<account>.dkr.ecr.<region>.amazonaws.com` host, else anonymous HTTPS.
 */
export function resolveRegistry(host: string, registries: readonly RegistryConfig[]): RegistryEndpoint {
  const wanted = canonicalHost(host);
  const configured = registries.find((r) => canonicalHost(r.host) === wanted);
  if (configured) return { host: configured.host, insecure: configured.insecure, auth: configured.auth };
  const ecr = parseEcrHost(host);
  if (ecr) return { host, insecure: false, auth: { $case: 'ecr', region: ecr.region, endpoint: undefined } };
  return { host, insecure: false, auth: { $case: 'anonymous' } };
}
