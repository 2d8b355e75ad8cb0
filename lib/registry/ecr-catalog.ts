/**
 * What an Amazon ECR registry holds, through the ECR API: `DescribeRepositories` and
 * `DescribeImages` (digests and their tags in one listing, paginated with `nextToken`), and what
 * its scanner found, through `DescribeImageScanFindings` (basic scanning and Inspector alike
 * answer `imageScanStatus` and `findingSeverityCounts`). The SDK retries throttling with its
 * adaptive rate limiter; callers bound their own concurrency.
 */
import {
  DescribeImageScanFindingsCommand,
  DescribeImagesCommand,
  DescribeRepositoriesCommand,
  ECRClient,
  type ECRClientConfig,
} from '@aws-sdk/client-ecr';
import type { RegistryConfig } from '../config/types';
import { RegistryError, describeError, type RegistryErrorCode } from '../core/errors';
import { isSignatureArtifactTag, isRepository } from '../core/reference';
import type { ScanResult, SeverityCounts } from '../events/types';
import type { InventoryImage, RegistryInventory } from './catalog';
import { parseEcrHost } from './ecr-auth';
import type { ReadOptions } from './types';

/** Where one ECR registry's API is. */
export interface EcrRegistryApi {
  /** `<account>.dkr.ecr.<region>.amazonaws.com`, or a stand-in with `registryId` and `region` given. */
  readonly host: string;
  readonly registryId?: string;
  readonly region?: string;
  readonly endpoint?: string;
  /** Passed to the SDK client (credentials, retries); default adaptive retries, 8 attempts. */
  readonly clientConfig?: Omit<ECRClientConfig, 'region' | 'endpoint'>;
  /** Entries asked for per page (`maxResults`); default 1000, ECR's most. */
  readonly pageSize?: number;
}

/** ECR's own page limit for both listings. */
const PAGE_SIZE = 1000;

/** The ECR API of one registry: its inventory, and its scan results. */
export class EcrInventory implements RegistryInventory {
  private readonly client: ECRClient;
  private readonly registryId: string | undefined;
  private readonly pageSize: number;

  constructor(private readonly api: EcrRegistryApi) {
    const parsed = parseEcrHost(api.host);
    this.registryId = api.registryId ?? parsed?.accountId;
    this.pageSize = Math.min(PAGE_SIZE, Math.max(1, api.pageSize ?? PAGE_SIZE));
    this.client = new ECRClient({
      retryMode: 'adaptive',
      maxAttempts: 8,
      ...api.clientConfig,
      ...((api.region ?? parsed?.region) !== undefined ? { region: api.region ?? parsed?.region } : {}),
      ...(api.endpoint !== undefined ? { endpoint: api.endpoint } : {}),
    });
  }

  async *repositories(options: ReadOptions = {}): AsyncIterable<string> {
    let nextToken: string | undefined;
    do {
      const page = await this.call('DescribeRepositories', () =>
        this.client.send(
          new DescribeRepositoriesCommand({
            ...(this.registryId !== undefined ? { registryId: this.registryId } : {}),
            maxResults: this.pageSize,
            nextToken,
          }),
          { abortSignal: options.signal },
        ),
      );
      for (const repository of page.repositories ?? []) {
        if (isRepository(repository.repositoryName)) yield repository.repositoryName;
      }
      nextToken = page.nextToken;
    } while (nextToken !== undefined);
  }

  async images(repository: string, options: ReadOptions = {}): Promise<InventoryImage[]> {
    const images: InventoryImage[] = [];
    let nextToken: string | undefined;
    do {
      const page = await this.call(`DescribeImages ${repository}`, () =>
        this.client.send(
          new DescribeImagesCommand({
            repositoryName: repository,
            ...(this.registryId !== undefined ? { registryId: this.registryId } : {}),
            filter: { tagStatus: 'TAGGED' },
            maxResults: this.pageSize,
            nextToken,
          }),
          { abortSignal: options.signal },
        ),
      );
      for (const detail of page.imageDetails ?? []) {
        const tags = (detail.imageTags ?? []).filter((tag) => !isSignatureArtifactTag(tag));
        if (detail.imageDigest !== undefined && tags.length > 0)
          images.push({ digest: detail.imageDigest, tags });
      }
      nextToken = page.nextToken;
    } while (nextToken !== undefined);
    return images;
  }

  /** The scan result of one image; undefined while there is none (not scanned, or still scanning). */
  async scanResult(repository: string, digest: string): Promise<ScanResult | undefined> {
    let answer;
    try {
      answer = await this.client.send(
        new DescribeImageScanFindingsCommand({
          repositoryName: repository,
          imageId: { imageDigest: digest },
          ...(this.registryId !== undefined ? { registryId: this.registryId } : {}),
          maxResults: 1,
        }),
      );
    } catch (err) {
      // Never scanned: no result yet (a push waits for its scan event instead).
      if ((err as { name?: string }).name === 'ScanNotFoundException') return undefined;
      throw this.failure(`DescribeImageScanFindings ${repository}@${digest}`, err);
    }
    const status = answer.imageScanStatus?.status;
    const scanner = answer.imageScanFindings?.enhancedFindings !== undefined ? 'inspector' : 'ecr';
    switch (status) {
      case 'COMPLETE':
      case 'ACTIVE': {
        const counts = answer.imageScanFindings?.findingSeverityCounts ?? {};
        return { $case: 'complete', scanner, counts: severityCounts(counts), fixable: undefined };
      }
      case 'FAILED':
      case 'UNSUPPORTED_IMAGE':
      case 'FINDINGS_UNAVAILABLE':
      case 'SCAN_ELIGIBILITY_EXPIRED':
        return {
          $case: 'failed',
          scanner,
          detail: `ECR scan status ${status}${answer.imageScanStatus?.description !== undefined ? `: ${answer.imageScanStatus.description}` : ''}`,
        };
      default:
        // IN_PROGRESS, PENDING, LIMIT_EXCEEDED: no result yet.
        return undefined;
    }
  }

  destroy(): void {
    this.client.destroy();
  }

  private async call<T>(what: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (err) {
      throw this.failure(what, err);
    }
  }

  private failure(what: string, err: unknown): RegistryError {
    const name = (err as { name?: string }).name ?? '';
    const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    const code = ecrErrorCode(name, status);
    return new RegistryError(code, this.api.host, `ECR ${what}: ${describeError(err)}`, {
      cause: err,
      ...(status !== undefined ? { status } : {}),
    });
  }
}

/** The ECR API of a configured registry: the region and endpoint its `auth` names, if any. */
export function ecrInventoryOf(registry: Pick<RegistryConfig, 'host' | 'auth'>): EcrInventory {
  const auth = registry.auth.$case === 'ecr' ? registry.auth : undefined;
  return new EcrInventory({
    host: registry.host,
    ...(auth?.region !== undefined ? { region: auth.region } : {}),
    ...(auth?.endpoint !== undefined ? { endpoint: auth.endpoint } : {}),
  });
}

/** A registry error code for an ECR API failure (retryable ones: throttling, 5xx, no connection). */
function ecrErrorCode(name: string, status: number | undefined): RegistryErrorCode {
  if (name === 'AbortError') return 'ABORTED';
  if (name === 'ThrottlingException' || status === 429) return 'RATE_LIMITED';
  if (name === 'RepositoryNotFoundException' || name === 'ImageNotFoundException') return 'NOT_FOUND';
  if (UNAUTHORIZED.has(name)) return 'UNAUTHORIZED';
  if (name === 'AccessDeniedException' || status === 403) return 'DENIED';
  if (status !== undefined && status >= 500) return 'UNAVAILABLE';
  // Any other answer is about the request (a bad parameter): another attempt gets the same.
  if (status !== undefined) return 'PROTOCOL';
  return 'UNREACHABLE';
}

/** The SDK's and ECR's ways of saying there are no usable AWS credentials. */
const UNAUTHORIZED: ReadonlySet<string> = new Set([
  'CredentialsProviderError',
  'UnrecognizedClientException',
  'InvalidSignatureException',
  'ExpiredTokenException',
]);

/** ECR's severities onto Signet's four: INFORMATIONAL and UNDEFINED count as LOW. */
function severityCounts(counts: Readonly<Record<string, number>>): SeverityCounts {
  const n = (key: string): number => counts[key] ?? 0;
  return {
    CRITICAL: n('CRITICAL'),
    HIGH: n('HIGH'),
    MEDIUM: n('MEDIUM'),
    LOW: n('LOW') + n('INFORMATIONAL') + n('UNDEFINED') + n('UNTRIAGED'),
  };
}
