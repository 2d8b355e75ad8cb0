/**
 * What a registry holds, for a backfill: its repositories and, in each, its tagged images (a
 * digest with every tag that points at it). Distribution (and Harbor, which serves the same
 * `/v2/_catalog` to users allowed to list) pages `_catalog` and `tags/list` with `?n=` and a
 * `Link: <...>; rel="next"` header, and names digests only through a manifest HEAD per tag; ECR
 * lists digests and tags together (`ecr-catalog.ts`).
 *
 * Signature artifacts (`sha256-<hex>.sig`, `.att`, `.sbom`, the referrers fallback tag) are not
 * images: they are left out here.
 */
import type { RegistryConfig } from '../config/types';
import { mapBounded } from '../core/pool';
import { RegistryError } from '../core/errors';
import { isSignatureArtifactTag, isRepository, isTag } from '../core/reference';
import type { ListPage } from './client';
import { ecrInventoryOf } from './ecr-catalog';
import type { ManifestHead, ReadOptions } from './types';

/** One image of a repository: a manifest digest and the tags that point at it. */
export interface InventoryImage {
  readonly digest: string;
  readonly tags: readonly string[];
}

/** Lists what a registry holds. */
export interface RegistryInventory {
  /** Every repository, in the registry's order (lexical for distribution). */
  repositories(options?: ReadOptions): AsyncIterable<string>;
  /** The tagged images of one repository, signature artifacts left out. */
  images(repository: string, options?: ReadOptions): Promise<InventoryImage[]>;
}

/** What the distribution inventory needs of a registry client (`HttpRegistryClient` has it). */
export interface ListingClient {
  readonly host: string;
  listPage(page: string, repository: string | undefined, options?: ReadOptions): Promise<ListPage>;
  headManifest(
    repository: string,
    reference: string,
    options?: ReadOptions,
  ): Promise<ManifestHead | undefined>;
}

/** Entries asked for per page; registries may answer fewer (and then say where the rest is). */
export const DEFAULT_PAGE_SIZE = 100;
/** Pages read at most for one listing: a registry that never stops paging is refused. */
const MAX_PAGES = 100_000;
/** Tags resolved to their digest at once, per repository. */
const HEAD_CONCURRENCY = 4;

/** The distribution API's inventory: `_catalog` and `tags/list` pages, a HEAD per tag. */
export class DistributionInventory implements RegistryInventory {
  constructor(
    private readonly client: ListingClient,
    private readonly pageSize = DEFAULT_PAGE_SIZE,
  ) {}

  async *repositories(options: ReadOptions = {}): AsyncIterable<string> {
    for await (const json of this.pages(`/v2/_catalog?n=${this.pageSize}`, undefined, options)) {
      for (const name of this.list(json, 'repositories')) {
        if (isRepository(name)) yield name;
      }
    }
  }

  async images(repository: string, options: ReadOptions = {}): Promise<InventoryImage[]> {
    const tags: string[] = [];
    for await (const json of this.pages(
      `/v2/${repository}/tags/list?n=${this.pageSize}`,
      repository,
      options,
    )) {
      for (const tag of this.list(json, 'tags'))
        if (isTag(tag) && !isSignatureArtifactTag(tag)) tags.push(tag);
    }
    // A HEAD per tag, a few at a time; the images keep the order of their first tag.
    // A tag deleted since it was listed simply is not an image any more.
    const digests = await mapBounded(
      tags,
      HEAD_CONCURRENCY,
      async (tag) => (await this.client.headManifest(repository, tag, options))?.digest,
    );
    const byDigest = new Map<string, string[]>();
    tags.forEach((tag, i) => {
      const digest = digests[i];
      if (digest !== undefined) byDigest.set(digest, [...(byDigest.get(digest) ?? []), tag]);
    });
    return [...byDigest].map(([digest, names]) => ({ digest, tags: names }));
  }

  private async *pages(
    first: string,
    repository: string | undefined,
    options: ReadOptions,
  ): AsyncIterable<unknown> {
    let page: string | undefined = first;
    const seen = new Set<string>();
    for (let n = 0; page !== undefined; n++) {
      if (n >= MAX_PAGES || seen.has(page)) {
        throw new RegistryError('PROTOCOL', this.client.host, `${first}: the pages do not end (at ${page})`);
      }
      seen.add(page);
      const { json, next } = await this.client.listPage(page, repository, options);
      yield json;
      page = next;
    }
  }

  /** `json[key]` when it is a list of strings (distribution answers `"tags": null` for none). */
  private list(json: unknown, key: string): string[] {
    if (json === undefined || json === null) return [];
    const value = typeof json === 'object' ? (json as Record<string, unknown>)[key] : undefined;
    if (value === undefined || value === null) return [];
    if (!Array.isArray(value)) {
      throw new RegistryError('PROTOCOL', this.client.host, `the ${key} listing is not a list`);
    }
    return value.filter((item): item is string => typeof item === 'string');
  }
}

/**
 * The inventory of a configured registry: ECR's API for an `ecr` registry (credentials and region
 * from the AWS SDK's usual sources, the endpoint its `auth` names), the distribution API otherwise.
 */
export function inventoryOf(
  registry: Pick<RegistryConfig, 'host' | 'kind' | 'auth'>,
  client: ListingClient,
): RegistryInventory {
  return registry.kind === 'ecr' ? ecrInventoryOf(registry) : new DistributionInventory(client);
}
