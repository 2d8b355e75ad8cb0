/** One registry client per host for a configuration. */
import type { RegistryConfig } from '../config/types';
import { canonicalHost } from '../core/reference';
import { HttpRegistryClient } from './client';
import { EcrAuthorizationTokens } from './ecr-auth';
import { resolveRegistry } from './endpoint';
import type { RegistryClientOptions } from './options';
import type { RegistryClientFactory } from './types';

/** One client per registry host, sharing tokens, ECR credentials and (through undici) connections. */
export class RegistryClients implements RegistryClientFactory {
  private readonly registries: readonly RegistryConfig[];
  private readonly options: RegistryClientOptions;
  private readonly clients = new Map<string, HttpRegistryClient>();

  constructor(registries: readonly RegistryConfig[], options: RegistryClientOptions = {}) {
    this.registries = registries;
    this.options = { ...options, ecrCredentials: options.ecrCredentials ?? new EcrAuthorizationTokens() };
  }

  client(host: string): HttpRegistryClient {
    const key = canonicalHost(host);
    let client = this.clients.get(key);
    if (!client) {
      client = new HttpRegistryClient(resolveRegistry(host, this.registries), this.options);
      this.clients.set(key, client);
    }
    return client;
  }
}
