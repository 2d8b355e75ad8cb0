/**
 * The distribution inventory against a real registry: `_catalog` and `tags/list` read page by page
 * (a page size small enough that every listing takes several pages, followed through the `Link`
 * headers the registry writes), tags grouped by digest, signature artifacts left out; and through a
 * fault proxy, the pages and HEADs a fault broke are read again.
 */
import { HttpRegistryClient } from '../../lib/registry/client';
import { DistributionInventory, inventoryOf } from '../../lib/registry/catalog';
import { EcrInventory } from '../../lib/registry/ecr-catalog';
import type { RetryPolicy } from '../../lib/core/retry';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy';
import { copyOverHttp, pushImageOverHttp } from '../support/oci-http';
import { startTestRegistry, type TestRegistry } from '../support/registry';

const FAST_RETRY: RetryPolicy = { attempts: 6, baseDelayMs: 1, maxDelayMs: 10 };
const PAGE_SIZE = 3;
const REPOSITORIES = ['alpha/app', 'alpha/tool', 'beta/app', 'beta/db', 'gamma/x/deep', 'zeta'];
const TAGS = 7;

let registry: TestRegistry;
let proxy: FaultProxy;
/** Digest by `repository:tag`. */
const pushed = new Map<string, string>();

const clientFor = (host: string): HttpRegistryClient =>
  new HttpRegistryClient({ host, insecure: true, auth: { $case: 'anonymous' } }, { retry: FAST_RETRY });

const collect = async (iterable: AsyncIterable<string>): Promise<string[]> => {
  const items: string[] = [];
  for await (const item of iterable) items.push(item);
  return items;
};

beforeAll(async () => {
  registry = await startTestRegistry();
  proxy = await startFaultProxy(registry.host, { seed: 7 });
  for (const repository of REPOSITORIES) {
    for (let i = 0; i < TAGS; i++) {
      pushed.set(
        `${repository}:v${i}`,
        await pushImageOverHttp(registry.url, repository, `v${i}`, `${repository}-${i}`),
      );
    }
  }
  // Two more tags on one digest, and a cosign signature tag (an artifact, not an image).
  const v0 = pushed.get('alpha/app:v0') ?? '';
  const at = { url: registry.url, repository: 'alpha/app' };
  await copyOverHttp({ ...at, reference: 'v0' }, { ...at, reference: 'latest' });
  await copyOverHttp({ ...at, reference: 'v0' }, { ...at, reference: 'stable' });
  await copyOverHttp({ ...at, reference: 'v1' }, { ...at, reference: `${v0.replace(':', '-')}.sig` });
}, 120_000);

afterAll(async () => {
  await proxy?.close();
  await registry?.stop();
});

const listings = (path: string): string[] =>
  proxy.requests.filter((r) => r.method === 'GET' && r.path.startsWith(path)).map((r) => r.path);

describe('DistributionInventory', () => {
  describe('with a page size smaller than the listings', () => {
    let inventory: DistributionInventory;
    beforeAll(() => {
      proxy.requests.length = 0;
      inventory = new DistributionInventory(clientFor(proxy.host), PAGE_SIZE);
    });

    it('lists every repository, in order, following the Link pages', async () => {
      expect(await collect(inventory.repositories())).toEqual([...REPOSITORIES].sort());
      const pages = listings('/v2/_catalog');
      expect(pages.length).toBeGreaterThanOrEqual(Math.ceil(REPOSITORIES.length / PAGE_SIZE));
      expect(pages[0]).toBe(`/v2/_catalog?n=${PAGE_SIZE}`);
      expect(pages.slice(1).every((p) => /[?&]last=/.test(p))).toBe(true);
    });

    it("lists a repository's images, each digest with its tags, without signature tags", async () => {
      const images = await inventory.images('alpha/app');
      const byDigest = new Map(images.map((image) => [image.digest, [...image.tags].sort()]));
      expect(byDigest.size).toBe(TAGS);
      expect(byDigest.get(pushed.get('alpha/app:v0') ?? '')).toEqual(['latest', 'stable', 'v0']);
      for (let i = 1; i < TAGS; i++)
        expect(byDigest.get(pushed.get(`alpha/app:v${i}`) ?? '')).toEqual([`v${i}`]);
      const pages = listings('/v2/alpha/app/tags/list');
      expect(pages[0]).toBe(`/v2/alpha/app/tags/list?n=${PAGE_SIZE}`);
      // Distribution 2.8 answers every tag at once (it pages the catalog only); newer registries
      // page tags too, through the same Link-following code (test/registry/catalog.test.ts).
      expect(pages.length).toBeGreaterThanOrEqual(1);
    });

    it('lists a repository that does not exist as empty', async () => {
      expect(await inventory.images('nobody/here')).toEqual([]);
    });
  });

  describe('through a registry that fails one request in five', () => {
    afterAll(() => {
      proxy.faultRate = 0;
    });

    it('reads again what a fault broke, and lists the same', async () => {
      proxy.faultRate = 0.2;
      const before = proxy.injectedTotal();
      const inventory = new DistributionInventory(clientFor(proxy.host), PAGE_SIZE);
      expect(await collect(inventory.repositories())).toEqual([...REPOSITORIES].sort());
      for (const repository of REPOSITORIES) {
        const images = await inventory.images(repository);
        expect(images.map((i) => i.digest).sort()).toEqual(
          Array.from({ length: TAGS }, (_, i) => pushed.get(`${repository}:v${i}`)).sort(),
        );
      }
      expect(proxy.injectedTotal()).toBeGreaterThan(before);
    });
  });
});

describe('inventoryOf', () => {
  it('reads a distribution or Harbor registry through its API, an ECR registry through ECR', () => {
    const client = clientFor(registry.host);
    expect(
      inventoryOf({ host: registry.host, kind: 'harbor', auth: { $case: 'anonymous' } }, client),
    ).toBeInstanceOf(DistributionInventory);
    const ecr = inventoryOf(
      {
        host: '111122223333.dkr.ecr.eu-west-1.amazonaws.com',
        kind: 'ecr',
        auth: { $case: 'ecr', region: undefined, endpoint: 'http://127.0.0.1:9' },
      },
      client,
    );
    expect(ecr).toBeInstanceOf(EcrInventory);
    (ecr as EcrInventory).destroy();
  });
});
