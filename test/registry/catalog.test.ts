/**
 * The distribution inventory over a scripted `ListingClient` (the interface, no server): tag pages
 * followed to their end, and the listings a registry can get wrong. Paging against a real registry
 * is in catalog.int.test.ts.
 */
import { RegistryError } from '../../lib/core/errors';
import type { ListPage } from '../../lib/registry/client';
import { DistributionInventory, type ListingClient } from '../../lib/registry/catalog';
import type { ManifestHead } from '../../lib/registry/types';

const HOST = 'registry.example.com';
const digest = (n: number): string => `sha256:${String(n).padStart(64, '0')}`;

/** Answers each page URL from `pages`, and a HEAD per tag from `heads`. */
class ScriptedListing implements ListingClient {
  readonly host = HOST;
  readonly asked: string[] = [];

  constructor(
    private readonly pages: Readonly<Record<string, ListPage>>,
    private readonly heads: Readonly<Record<string, string>> = {},
  ) {}

  listPage(page: string): Promise<ListPage> {
    this.asked.push(page);
    const answer = this.pages[page];
    return answer === undefined ? Promise.reject(new Error(`no page ${page}`)) : Promise.resolve(answer);
  }

  headManifest(_repository: string, reference: string): Promise<ManifestHead | undefined> {
    const found = this.heads[reference];
    return Promise.resolve(found === undefined ? undefined : { digest: found, mediaType: 'x', size: 1 });
  }
}

const collect = async (iterable: AsyncIterable<string>): Promise<string[]> => {
  const items: string[] = [];
  for await (const item of iterable) items.push(item);
  return items;
};

describe('DistributionInventory', () => {
  it('follows tag pages to the end, grouping tags by digest and dropping deleted ones', async () => {
    const next = 'https://registry.example.com/v2/team-a/app/tags/list?last=b&n=2';
    const client = new ScriptedListing(
      {
        '/v2/team-a/app/tags/list?n=2': { json: { tags: ['a', 'b'] }, next },
        [next]: {
          json: { tags: ['c', 'gone', `${digest(1).replace(':', '-')}.sig`, 'Not A Tag'] },
          next: undefined,
        },
      },
      { a: digest(1), b: digest(2), c: digest(1) },
    );
    const images = await new DistributionInventory(client, 2).images('team-a/app');
    expect(images).toEqual([
      { digest: digest(1), tags: ['a', 'c'] },
      { digest: digest(2), tags: ['b'] },
    ]);
    expect(client.asked).toEqual(['/v2/team-a/app/tags/list?n=2', next]);
  });

  it('reads no tags (`"tags": null`, an empty answer) as no images', async () => {
    const client = new ScriptedListing({
      '/v2/a/tags/list?n=100': { json: { name: 'a', tags: null }, next: undefined },
      '/v2/b/tags/list?n=100': { json: undefined, next: undefined },
    });
    const inventory = new DistributionInventory(client);
    expect(await inventory.images('a')).toEqual([]);
    expect(await inventory.images('b')).toEqual([]);
  });

  it('skips names that are not repositories in the catalog', async () => {
    const client = new ScriptedListing({
      '/v2/_catalog?n=100': { json: { repositories: ['team-a/app', 'UPPER/case', 7] }, next: undefined },
    });
    expect(await collect(new DistributionInventory(client).repositories())).toEqual(['team-a/app']);
  });

  describe('when the registry answers wrong', () => {
    it('refuses a listing that is not a list', async () => {
      const client = new ScriptedListing({
        '/v2/_catalog?n=100': { json: { repositories: 'team-a/app' }, next: undefined },
      });
      await expect(collect(new DistributionInventory(client).repositories())).toThrowWithCode(
        RegistryError,
        'PROTOCOL',
      );
    });

    it('refuses pages that lead back to one already read', async () => {
      const again = 'https://registry.example.com/v2/_catalog?n=100';
      const client = new ScriptedListing({
        '/v2/_catalog?n=100': { json: { repositories: ['a'] }, next: again },
        [again]: { json: { repositories: ['b'] }, next: again },
      });
      await expect(collect(new DistributionInventory(client).repositories())).toThrowWithCode(
        RegistryError,
        'PROTOCOL',
      );
    });
  });
});
