/**
 * The ECR inventory with the real @aws-sdk/client-ecr, against a local endpoint speaking ECR's
 * JSON 1.1 protocol (`AmazonEC2ContainerRegistry_V20150921.*`): DescribeRepositories and
 * DescribeImages paged with `nextToken` (the endpoint answers a few entries a page, as ECR may),
 * throttling retried by the SDK, ECR's errors as Signet's codes, and scan results.
 */
import { RegistryError } from '../../lib/core/errors';
import { EcrInventory } from '../../lib/registry/ecr-catalog';
import { AwsFault, startAwsJsonEndpoint, type AwsJsonEndpoint } from '../support/aws-endpoint';
import { fastRetryStrategy } from '../support/kms-endpoint';

const HOST = '111122223333.dkr.ecr.eu-west-1.amazonaws.com';
/** Entries the endpoint answers at most per page, whatever `maxResults` asks. */
const ENDPOINT_PAGE = 2;
const digest = (n: number): string => `sha256:${n.toString(16).padStart(64, '0')}`;

interface EcrImage {
  readonly imageDigest: string;
  readonly imageTags?: string[];
}

const REPOSITORIES = ['team-a/app', 'team-a/tool', 'team-b/api', 'zeta', 'Not/A/Repo'];
const IMAGES: Record<string, EcrImage[]> = {
  'team-a/app': [
    { imageDigest: digest(1), imageTags: ['v1', 'latest'] },
    { imageDigest: digest(2), imageTags: ['v2', `${digest(1).replace(':', '-')}.sig`] },
    { imageDigest: digest(3), imageTags: [`${digest(2).replace(':', '-')}.sig`] },
    { imageDigest: digest(4) },
    { imageDigest: digest(5), imageTags: ['v5'] },
  ],
};

/** One page of `items` from `nextToken` on, ENDPOINT_PAGE at most. */
function page<T>(items: readonly T[], body: { nextToken?: string; maxResults?: number }) {
  const start = body.nextToken === undefined ? 0 : Number(body.nextToken.slice('token-'.length));
  const end = Math.min(items.length, start + Math.min(ENDPOINT_PAGE, body.maxResults ?? 1000));
  return {
    slice: items.slice(start, end),
    ...(end < items.length ? { nextToken: `token-${end}` } : {}),
  };
}

let ecr: AwsJsonEndpoint;
let fault: { op: string; type: string; status: number; times: number } | undefined;
const scans = new Map<string, unknown>();

const failing = (op: string): void => {
  if (fault !== undefined && fault.op === op && fault.times > 0) {
    fault.times--;
    throw new AwsFault(fault.type, `injected ${fault.type}`, fault.status);
  }
};

beforeAll(async () => {
  ecr = await startAwsJsonEndpoint({
    targetPrefix: 'AmazonEC2ContainerRegistry_V20150921',
    handlers: {
      DescribeRepositories: (body: { nextToken?: string; maxResults?: number }) => {
        failing('DescribeRepositories');
        const { slice, nextToken } = page(REPOSITORIES, body);
        return {
          repositories: slice.map((repositoryName) => ({
            repositoryName,
            registryId: '111122223333',
            repositoryUri: `${HOST}/${repositoryName}`,
          })),
          ...(nextToken !== undefined ? { nextToken } : {}),
        };
      },
      DescribeImages: (body: {
        repositoryName: string;
        nextToken?: string;
        maxResults?: number;
        filter?: { tagStatus?: string };
      }) => {
        failing('DescribeImages');
        const images = IMAGES[body.repositoryName];
        if (images === undefined) {
          throw new AwsFault('RepositoryNotFoundException', `repository ${body.repositoryName} not found`);
        }
        const shown = body.filter?.tagStatus === 'TAGGED' ? images.filter((i) => i.imageTags) : images;
        const { slice, nextToken } = page(shown, body);
        return {
          imageDetails: slice.map((i) => ({
            ...i,
            registryId: '111122223333',
            repositoryName: body.repositoryName,
          })),
          ...(nextToken !== undefined ? { nextToken } : {}),
        };
      },
      DescribeImageScanFindings: (body: { imageId: { imageDigest: string } }) => {
        failing('DescribeImageScanFindings');
        const answer = scans.get(body.imageId.imageDigest);
        if (answer === undefined) throw new AwsFault('ScanNotFoundException', 'no scan');
        return answer;
      },
    },
  });
});
afterAll(() => ecr?.close());

let inventory: EcrInventory;
beforeEach(() => {
  fault = undefined;
  ecr.calls.length = 0;
  inventory = new EcrInventory({
    host: HOST,
    endpoint: ecr.url,
    clientConfig: {
      credentials: { accessKeyId: 'AKIDSIGNETTEST', secretAccessKey: 'signet-test-secret' },
      retryStrategy: fastRetryStrategy(3),
    },
  });
});
afterEach(() => inventory.destroy());

const collect = async (iterable: AsyncIterable<string>): Promise<string[]> => {
  const items: string[] = [];
  for await (const item of iterable) items.push(item);
  return items;
};
const callsOf = (op: string) => ecr.calls.filter((c) => c.target.endsWith(`.${op}`));

describe('EcrInventory', () => {
  it("lists every repository across pages, asking for the host's account", async () => {
    expect(await collect(inventory.repositories())).toEqual([
      'team-a/app',
      'team-a/tool',
      'team-b/api',
      'zeta',
    ]);
    const calls = callsOf('DescribeRepositories');
    expect(calls).toHaveLength(Math.ceil(REPOSITORIES.length / ENDPOINT_PAGE));
    expect(calls[0]?.body).toEqual({ registryId: '111122223333', maxResults: 1000 });
    expect(calls.slice(1).map((c) => (c.body as { nextToken: string }).nextToken)).toEqual([
      'token-2',
      'token-4',
    ]);
  });

  it('lists tagged images across pages, with their tags, signature tags left out', async () => {
    expect(await inventory.images('team-a/app')).toEqual([
      { digest: digest(1), tags: ['v1', 'latest'] },
      { digest: digest(2), tags: ['v2'] },
      { digest: digest(5), tags: ['v5'] },
    ]);
    const calls = callsOf('DescribeImages');
    expect(calls.length).toBeGreaterThan(1);
    expect(calls[0]?.body).toMatchObject({ repositoryName: 'team-a/app', filter: { tagStatus: 'TAGGED' } });
  });

  it('asks for the page size it was given', async () => {
    const small = new EcrInventory({
      host: 'ecr.local.test',
      registryId: '444455556666',
      region: 'us-east-1',
      endpoint: ecr.url,
      pageSize: 1,
      clientConfig: { credentials: { accessKeyId: 'AKIDSIGNETTEST', secretAccessKey: 'signet-test-secret' } },
    });
    try {
      expect(await collect(small.repositories())).toHaveLength(4);
      expect(callsOf('DescribeRepositories')).toHaveLength(REPOSITORIES.length);
      expect(callsOf('DescribeRepositories')[0]?.body).toEqual({ registryId: '444455556666', maxResults: 1 });
    } finally {
      small.destroy();
    }
  });

  it('lets the SDK retry throttling', async () => {
    fault = { op: 'DescribeImages', type: 'ThrottlingException', status: 400, times: 1 };
    expect(await inventory.images('team-a/app')).toHaveLength(3);
    expect(fault.times).toBe(0);
  });

  describe("turns ECR's errors into registry errors", () => {
    it.each([
      ['ThrottlingException', 400, 'RATE_LIMITED'],
      ['AccessDeniedException', 400, 'DENIED'],
      ['UnrecognizedClientException', 400, 'UNAUTHORIZED'],
      ['ServerException', 500, 'UNAVAILABLE'],
      ['InvalidParameterException', 400, 'PROTOCOL'],
    ])('%s (HTTP %d) is %s', async (type, status, code) => {
      fault = { op: 'DescribeRepositories', type, status, times: 10 };
      await expect(collect(inventory.repositories())).toThrowWithCode(RegistryError, code);
    });

    it('a repository that does not exist is NOT_FOUND', async () => {
      await expect(inventory.images('nobody/here')).toThrowWithCode(RegistryError, 'NOT_FOUND');
    });

    it('an endpoint nobody answers is UNREACHABLE', async () => {
      const nowhere = new EcrInventory({
        host: HOST,
        endpoint: 'http://127.0.0.1:9',
        clientConfig: {
          credentials: { accessKeyId: 'AKIDSIGNETTEST', secretAccessKey: 'signet-test-secret' },
          retryStrategy: fastRetryStrategy(1),
        },
      });
      try {
        await expect(nowhere.images('team-a/app')).toThrowWithCode(RegistryError, 'UNREACHABLE');
      } finally {
        nowhere.destroy();
      }
    });

    it('an aborted listing is ABORTED', async () => {
      const abort = new AbortController();
      abort.abort();
      await expect(inventory.images('team-a/app', { signal: abort.signal })).toThrowWithCode(
        RegistryError,
        'ABORTED',
      );
    });
  });

  describe('scanResult', () => {
    it('reads a complete scan, INFORMATIONAL and UNDEFINED counting as LOW', async () => {
      scans.set(digest(1), {
        imageScanStatus: { status: 'COMPLETE' },
        imageScanFindings: { findingSeverityCounts: { HIGH: 2, INFORMATIONAL: 3, UNDEFINED: 1 } },
      });
      expect(await inventory.scanResult('team-a/app', digest(1))).toEqual({
        $case: 'complete',
        scanner: 'ecr',
        counts: { CRITICAL: 0, HIGH: 2, MEDIUM: 0, LOW: 4 },
        fixable: undefined,
      });
    });

    it("says Inspector's enhanced scans come from Inspector", async () => {
      scans.set(digest(2), {
        imageScanStatus: { status: 'ACTIVE' },
        imageScanFindings: { enhancedFindings: [], findingSeverityCounts: { CRITICAL: 1 } },
      });
      expect(await inventory.scanResult('team-a/app', digest(2))).toMatchObject({
        $case: 'complete',
        scanner: 'inspector',
        counts: { CRITICAL: 1 },
      });
    });

    it('reads a failed scan with its description', async () => {
      scans.set(digest(3), { imageScanStatus: { status: 'UNSUPPORTED_IMAGE', description: 'not an image' } });
      expect(await inventory.scanResult('team-a/app', digest(3))).toEqual({
        $case: 'failed',
        scanner: 'ecr',
        detail: 'ECR scan status UNSUPPORTED_IMAGE: not an image',
      });
    });

    it('has no result while scanning, or for an image never scanned', async () => {
      scans.set(digest(4), { imageScanStatus: { status: 'IN_PROGRESS' } });
      expect(await inventory.scanResult('team-a/app', digest(4))).toBeUndefined();
      expect(await inventory.scanResult('team-a/app', digest(9))).toBeUndefined();
    });

    it('reports another failure as a registry error', async () => {
      fault = { op: 'DescribeImageScanFindings', type: 'AccessDeniedException', status: 400, times: 10 };
      await expect(inventory.scanResult('team-a/app', digest(1))).toThrowWithCode(RegistryError, 'DENIED');
    });
  });
});
