/**
 * Scan results from Amazon ECR, as EventBridge delivers them: `ECR Image Scan` (basic scanning)
 * and `Inspector2 Scan` (enhanced scanning by Amazon Inspector). Each names one image by
 * repository and digest and counts its findings by severity; neither says which findings have a
 * fix. The registry host follows from `account` and `region`, as for pushes.
 *
 * Basic scanning lists only the severities it found (`{"CRITICAL": 10, "MEDIUM": 9}`), out of
 * CRITICAL, HIGH, MEDIUM, LOW, INFORMATIONAL and UNDEFINED. Inspector gives CRITICAL, HIGH, MEDIUM
 * and TOTAL, and names the repository by its ARN.
 */
import {
  describe,
  get,
  invalid,
  optionalId,
  optionalTag,
  requireDigest,
  requireObject,
  requireRepository,
  requireString,
  type JsonObject,
} from './json';
import { NOT_SHA256_REASON } from './media-types';
import type { NormalizedEvents, ScanEvent, ScanResult, Scanner, SeverityCounts } from './types';

/** Findings one image can have, as far as counting them goes: far more than any scanner reports. */
const MAX_COUNT = 1_000_000_000;
const MAX_TAGS = 1000;

/** `ECR Image Scan`: `detail.scan-status` `COMPLETE` or `FAILED`. */
export function parseEcrImageScan(body: JsonObject, registry: string): NormalizedEvents {
  const detail = requireObject(get(body, 'detail'), 'detail');
  const status = requireString(get(detail, 'scan-status'), 'detail.scan-status', 64);
  const repository = requireRepository(get(detail, 'repository-name'), 'detail.repository-name');
  const counts = severityCounts(get(detail, 'finding-severity-counts'), 'detail.finding-severity-counts', {
    CRITICAL: ['CRITICAL'],
    HIGH: ['HIGH'],
    MEDIUM: ['MEDIUM'],
    LOW: ['LOW', 'INFORMATIONAL', 'UNDEFINED'],
  });
  const result: ScanResult =
    status === 'COMPLETE'
      ? { $case: 'complete', scanner: 'ecr', counts, fixable: undefined }
      : { $case: 'failed', scanner: 'ecr', detail: `ECR basic scan status ${status}` };
  return scanOf(body, detail, registry, repository, result);
}

/**
 * `Inspector2 Scan`: `detail.scan-status` `INSPECTOR_SCAN_COMPLETE` when Inspector scanned the
 * image; any other status (an unsupported OS, say) leaves no result to judge.
 */
export function parseInspectorScan(body: JsonObject, registry: string): NormalizedEvents {
  const detail = requireObject(get(body, 'detail'), 'detail');
  const status = requireString(get(detail, 'scan-status'), 'detail.scan-status', 64);
  const repository = repositoryOfArn(get(detail, 'repository-name'), 'detail.repository-name');
  const raw = requireObject(get(detail, 'finding-severity-counts'), 'detail.finding-severity-counts');
  const named = severityCounts(raw, 'detail.finding-severity-counts', {
    CRITICAL: ['CRITICAL'],
    HIGH: ['HIGH'],
    MEDIUM: ['MEDIUM'],
    LOW: [],
  });
  const total = count(get(raw, 'TOTAL'), 'detail.finding-severity-counts.TOTAL');
  // TOTAL counts LOW, INFORMATIONAL and UNTRIAGED findings too, which the event does not break out.
  const counts: SeverityCounts = {
    ...named,
    LOW: Math.max(0, total - named.CRITICAL - named.HIGH - named.MEDIUM),
  };
  const result: ScanResult =
    status === 'INSPECTOR_SCAN_COMPLETE'
      ? { $case: 'complete', scanner: 'inspector', counts, fixable: undefined }
      : { $case: 'failed', scanner: 'inspector', detail: `Inspector scan status ${status}` };
  return scanOf(body, detail, registry, repository, result);
}

function scanOf(
  body: JsonObject,
  detail: JsonObject,
  registry: string,
  repository: string,
  result: ScanResult,
): NormalizedEvents {
  const digest = requireDigest(get(detail, 'image-digest'), 'detail.image-digest');
  const tags = tagList(get(detail, 'image-tags'), 'detail.image-tags');
  const id = optionalId(get(body, 'id'), 'id');
  if (digest.$case === 'other-algorithm') {
    return { events: [], ignored: [{ field: 'detail.image-digest', reason: NOT_SHA256_REASON }] };
  }
  const scan: ScanEvent = { registry, repository, digest: digest.digest, tags, result, id };
  return { events: [], ignored: [], scans: [scan] };
}

/** `arn:aws:ecr:<region>:<account>:repository/<name>` → `<name>`; a plain name is taken as is. */
function repositoryOfArn(value: unknown, field: string): string {
  if (typeof value === 'string' && value.startsWith('arn:')) {
    const at = value.indexOf(':repository/');
    if (at < 0) throw invalid(field, `must be an ECR repository ARN, got ${describe(value)}`);
    return requireRepository(value.slice(at + ':repository/'.length), field);
  }
  return requireRepository(value, field);
}

/** Severity counts, each the sum of the keys listed for it; absent keys count 0. */
function severityCounts(
  value: unknown,
  field: string,
  keys: Readonly<Record<keyof SeverityCounts, readonly string[]>>,
): SeverityCounts {
  // Basic scanning leaves the member out when nothing was found.
  const counts = value === undefined || value === null ? {} : requireObject(value, field);
  const sum = (names: readonly string[]): number =>
    names.reduce((total, name) => total + count(get(counts, name), `${field}.${name}`), 0);
  return { CRITICAL: sum(keys.CRITICAL), HIGH: sum(keys.HIGH), MEDIUM: sum(keys.MEDIUM), LOW: sum(keys.LOW) };
}

function count(value: unknown, field: string): number {
  if (value === undefined || value === null) return 0;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0 || value > MAX_COUNT) {
    throw invalid(field, `must be a count of findings, got ${describe(value)}`);
  }
  return value;
}

function tagList(value: unknown, field: string): string[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw invalid(field, `must be a list of tags, got ${describe(value)}`);
  if (value.length > MAX_TAGS) throw invalid(field, `must hold at most ${MAX_TAGS} tags`);
  return value.flatMap((tag: unknown, i) => {
    const parsed = optionalTag(tag, `${field}[${i}]`);
    return parsed === undefined ? [] : [parsed];
  });
}

/** Which scanner a scan result came from, for messages. */
export const SCANNER_NAMES: Readonly<Record<Scanner, string>> = {
  ecr: 'ECR basic scanning',
  inspector: 'Amazon Inspector',
  harbor: 'Harbor',
};
