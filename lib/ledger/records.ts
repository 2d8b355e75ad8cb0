/**
 * Ledger records from what the edges see: a signing report, an answered admission review, a
 * `/verify` decision; which admitted images re-verification will check; and how a query matches
 * a record (the same filter for every store, so SQLite and DynamoDB answer alike).
 */
import { createHash, randomUUID } from 'node:crypto';
import type { AdmissionOutcome } from '../admission/controller';
import type { SigningRule } from '../config/types';
import { parseReference, repositoryName } from '../core/reference';
import type { SigningReport } from '../signing/pipeline';
import type { ImageDecision } from '../verification/decision';
import type { SigningTimeLookup } from '../verification/revocation';
import type {
  AdmittedImage,
  DecisionEffect,
  DecisionImage,
  DecisionRecord,
  Ledger,
  LedgerQuery,
  SignatureRecord,
} from './types';

/** Where a signing report came from, for its records. */
export interface SigningContext {
  /** The push event's id, when it had one. */
  readonly eventId: string | undefined;
  /** `serve`, `lambda`, `cli`. */
  readonly recordedBy: string;
  /** The configured rules (their conditions are recorded with each signature). */
  readonly rules: readonly SigningRule[];
  readonly now: number;
}

const idOf = (...parts: readonly string[]): string =>
  createHash('sha256').update(parts.join('\n')).digest('hex').slice(0, 32);

/**
 * The signatures of a report that exist in the registry (`signed`, `already-signed`). The id
 * names what the payload names (a `simple` payload does not depend on the tag), so a redelivered
 * push or a new tag on a signed digest finds the record already there.
 */
export function signatureRecords(report: SigningReport, context: SigningContext): SignatureRecord[] {
  const records: SignatureRecord[] = [];
  for (const outcome of report.outcomes) {
    if (outcome.status !== 'signed' && outcome.status !== 'already-signed') continue;
    const tag = outcome.signatureType === 'default' ? (report.tag ?? '') : '';
    const conditions = context.rules.find((r) => r.name === outcome.rule)?.conditions;
    records.push({
      id: idOf(
        report.registry,
        report.repository,
        outcome.digest,
        outcome.rule,
        outcome.witness,
        outcome.keyId ?? '',
        outcome.signatureType,
        tag,
      ),
      signedAt: context.now,
      registry: report.registry,
      repository: report.repository,
      tag: report.tag,
      digest: outcome.digest,
      rule: outcome.rule,
      witness: outcome.witness,
      keyId: outcome.keyId,
      algorithm: outcome.algorithm,
      signatureType: outcome.signatureType,
      status: outcome.status,
      signatureRef: outcome.signatureRef,
      bundleRef: outcome.bundleRef,
      conditions:
        conditions === undefined
          ? undefined
          : (JSON.parse(JSON.stringify(conditions)) as Record<string, unknown>),
      eventId: context.eventId,
      recordedBy: context.recordedBy,
    });
  }
  return records;
}

/**
 * The record of an answered admission review, or undefined for one that looked at no image and
 * admitted (a DELETE, a status update, an excluded namespace): those decide nothing about images.
 */
export function admissionRecord(outcome: AdmissionOutcome, decidedAt: number): DecisionRecord | undefined {
  const { request, response } = outcome;
  if (outcome.images.length === 0 && response.allowed) return undefined;
  const effect: DecisionEffect = !response.allowed
    ? 'deny'
    : (response.warnings?.length ?? 0) > 0
      ? 'warn'
      : 'allow';
  const reasons =
    effect === 'deny'
      ? [response.status?.message ?? 'denied']
      : effect === 'warn'
        ? [...(response.warnings ?? [])]
        : [];
  return {
    id: randomUUID(),
    decidedAt,
    source: 'admission',
    uid: request.uid,
    operation: request.operation,
    object:
      `${request.kind.kind} ${request.namespace !== undefined ? `${request.namespace}/` : ''}${request.name ?? ''}`.trim(),
    dryRun: request.dryRun,
    cluster: outcome.cluster,
    namespace: request.namespace,
    effect,
    reasons,
    images: outcome.images.map(({ site, decision }) => decisionImage(decision, site.field)),
  };
}

/** The record of one `POST /verify` decision. */
export function verifyRecord(decision: ImageDecision, decidedAt: number): DecisionRecord {
  return {
    id: randomUUID(),
    decidedAt,
    source: 'verify',
    uid: undefined,
    operation: undefined,
    object: undefined,
    dryRun: false,
    cluster: decision.cluster,
    namespace: decision.namespace,
    effect: decision.verdict,
    reasons: decision.verdict === 'allow' ? [] : [decision.message],
    images: [decisionImage(decision, undefined)],
  };
}

function decisionImage(decision: ImageDecision, field: string | undefined): DecisionImage {
  let repository: string | undefined;
  if (decision.reference !== undefined) {
    try {
      repository = repositoryName(parseReference(decision.reference));
    } catch {
      repository = undefined;
    }
  }
  return {
    field,
    image: decision.image,
    reference: decision.reference,
    repository,
    digest: decision.digest,
    verdict: decision.verdict,
    reason: decision.reason?.code,
    policies: decision.policies.map((p) => ({ policy: p.policy, effect: p.effect, reason: p.reason?.code })),
  };
}

/**
 * The images a decision admitted to run: an allowed admission review, not a dry run, each image
 * verified against at least one policy (an image no policy covers, admitted by
 * `noMatchingPolicy`, was never trusted, so it cannot lose trust).
 */
export function admittedImages(record: DecisionRecord): AdmittedImage[] {
  if (record.source !== 'admission' || record.dryRun || record.effect === 'deny') return [];
  const admitted: AdmittedImage[] = [];
  for (const image of record.images) {
    if (image.verdict === 'deny' || image.reference === undefined || image.digest === undefined) continue;
    if (image.policies.length === 0) continue;
    admitted.push({
      reference: image.reference,
      digest: image.digest,
      namespace: record.namespace ?? '',
      cluster: record.cluster ?? '',
      verdict: image.verdict,
      lastAdmittedAt: record.decidedAt,
    });
  }
  return admitted;
}

const inRange = (at: number, query: LedgerQuery): boolean =>
  (query.since === undefined || at >= query.since) && (query.until === undefined || at < query.until);

/** True when a signature record answers the query. */
export function matchesSignature(record: SignatureRecord, query: LedgerQuery): boolean {
  if (query.repository !== undefined && `${record.registry}/${record.repository}` !== query.repository)
    return false;
  if (query.tag !== undefined && record.tag !== query.tag) return false;
  if (query.digest !== undefined && record.digest !== query.digest) return false;
  if (query.witness !== undefined && record.witness !== query.witness) return false;
  return inRange(record.signedAt, query);
}

/** True when a decision record answers the query: one of its images matches. */
export function matchesDecision(record: DecisionRecord, query: LedgerQuery): boolean {
  if (query.witness !== undefined) return false;
  if (!inRange(record.decidedAt, query)) return false;
  if (query.repository === undefined && query.digest === undefined) return true;
  return record.images.some(
    (image) =>
      (query.repository === undefined || image.repository === query.repository) &&
      (query.tag === undefined || tagOf(image.reference) === query.tag) &&
      (query.digest === undefined || image.digest === query.digest),
  );
}

function tagOf(reference: string | undefined): string | undefined {
  if (reference === undefined) return undefined;
  try {
    return parseReference(reference).tag;
  } catch {
    return undefined;
  }
}

/** Most recent first, at most `limit`. */
export function newestFirst<T>(records: T[], timeOf: (record: T) => number, limit: number | undefined): T[] {
  records.sort((a, b) => timeOf(b) - timeOf(a));
  return limit === undefined ? records : records.slice(0, limit);
}

/**
 * The ledger as a trusted signing time for time-bound revocations: the earliest record of Signet
 * signing (or finding signed) `digest` with the key, by the rule when one is asked for.
 */
export function signingTimes(ledger: Pick<Ledger, 'signatures'>): SigningTimeLookup {
  return async ({ digest, keyId, rule }) => {
    const records = await ledger.signatures({ digest });
    let earliest: number | undefined;
    for (const r of records) {
      if (r.keyId !== keyId || (rule !== undefined && r.rule !== rule)) continue;
      if (earliest === undefined || r.signedAt < earliest) earliest = r.signedAt;
    }
    return earliest;
  };
}
