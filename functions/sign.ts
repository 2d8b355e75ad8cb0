/**
 * The sign Lambda: one EventBridge event in (async invocation from one of the construct's rules),
 * the image it names decided by every signing rule it triggers, one `Image Signed` event per
 * signature and one `Image Not Signed` event per rule whose conditions did not hold out. Runs the
 * same `SigningPipeline` as `signet serve`. The events it takes (all parsed by `parseEcrEvent`):
 *
 * - `ECR Image Action` (a push): decides the rules without `pushedBy`;
 * - `AWS API Call via CloudTrail` / `PutImage` (the same push, with its pusher): decides the rules
 *   with `pushedBy` (the construct adds its rule only when some rule has the condition);
 * - `ECR Image Scan` / `Inspector2 Scan` (a scan result): re-drives the scanned image for the
 *   rules with a `scan` condition (their rules exist only when some rule has it).
 *
 * Scans and this function's statelessness: a push whose rule needs a scan result that has not
 * arrived is `waiting`, which is not an error (logged, counted as `ScanWaiting`, nothing signed,
 * nothing thrown). The function keeps no state; the scan event, when it comes, carries the result
 * and decides the image on its own. A wait counts from the push event's `time`, so a delivery
 * older than `scan.waitSeconds` (EventBridge's or Lambda's late retry) reports `SCAN_TIMEOUT` as
 * `Image Not Signed`; nothing else re-runs a push whose scan never arrives, so a covered
 * repository must have scanning on (README, Deploy on AWS).
 *
 * Failure handling: a push whose signing failed (any rule) makes the handler throw, so Lambda's
 * asynchronous retries (the construct sets `retryAttempts: 2`) run it again; rules that already
 * signed find their signature and cost one manifest read. When the retries are exhausted, Lambda
 * hands the invocation record to `failure.ts` (the on-failure destination), which puts one
 * `Image Signing Failed` event on the bus and the original event into the dead-letter queue. The
 * failure event is emitted there and not here because this handler cannot know whether an
 * attempt is the last one, and consumers want one failure per image, not one per transient
 * KMS throttle that the next attempt gets past. `Image Not Signed` is different: an unmet
 * condition is a decision, not a failure, and it is announced at once.
 */
import type { EventBridgeEvent } from 'aws-lambda';
import middy from '@middy/core';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { SSMClient } from '@aws-sdk/client-ssm';
import { DEFAULTS } from '../lib/config/defaults';
import { kmsSigningOnly } from '../lib/config/kms-only';
import { InputError, describeError } from '../lib/core/errors';
import { parseEcrEvent } from '../lib/events/ecr';
import type { NormalizedEvents, PushEvent, ScanEvent } from '../lib/events/types';
import { DynamoLedger } from '../lib/ledger/dynamodb';
import { signatureRecords } from '../lib/ledger/records';
import type { Ledger } from '../lib/ledger/types';
import { createSignet, type Signet } from '../lib/signet';
import type { ConditionName, UnmetCondition, UnmetReason } from '../lib/signing/conditions';
import { notSigned, reportFailed, type RuleOutcome, type SigningReport } from '../lib/signing/pipeline';
import { ParameterConfig, type ConfigSource } from './config';
import { readSignEnv, type SignFunctionEnv, FUNCTION_METRICS } from './env';
import {
  DETAIL_TYPES,
  createLogger,
  createMetrics,
  handlerFromEnvironment,
  libLogger,
  putSignetEvents,
  type LambdaHandler,
  type Observability,
} from './runtime';

/** The detail of an `Image Signed` event (source `signet`). */
export interface ImageSignedDetail {
  readonly registry: string;
  readonly repository: string;
  readonly digest: string;
  readonly tag: string | null;
  readonly rule: string;
  readonly witness: string;
  readonly keyId: string | null;
  readonly algorithm: string;
  readonly signatureType: string;
  /** `registry/repository:sha256-<hex>.sig` */
  readonly signatureRef: string;
  /** `signed` now, or `already-signed` (a redelivered push whose signature was already there). */
  readonly status: 'signed' | 'already-signed';
}

/** The detail type of the event announcing that a rule's conditions did not hold (source `signet`). */
export const IMAGE_NOT_SIGNED = 'Image Not Signed';

/** The detail of an `Image Not Signed` event: which rule did not sign which image, and why. */
export interface ImageNotSignedDetail {
  readonly registry: string;
  readonly repository: string;
  readonly digest: string;
  readonly tag: string | null;
  readonly rule: string;
  readonly witness: string;
  /** The condition that did not hold (`pushedBy`, `scan`, `signedBy`). */
  readonly condition: ConditionName;
  /** Why, as a fixed code (`PUSHER_NOT_ALLOWED`, `SCAN_FINDINGS`, `SCAN_TIMEOUT`, ...). */
  readonly reason: UnmetReason;
  /** Why, in words (the pusher, the findings above the threshold, ...). */
  readonly detail: string;
}

/** What the handler returns (ignored by Lambda for async invocations; useful in tests and logs). */
export interface SignResult {
  readonly reports: readonly SigningReport[];
  readonly ignored: NormalizedEvents['ignored'];
  /** Set when the event itself was malformed (not retried: another attempt cannot fix it). */
  readonly invalid?: { readonly field: string; readonly message: string };
}

/** At least one rule failed for the pushed image; thrown so that Lambda retries the event. */
export class SigningFailedError extends Error {
  override readonly name = 'SigningFailedError';
}

/**
 * An EventBridge event as the construct's rules deliver it (`ECR Image Action`, CloudTrail's
 * `PutImage`, `ECR Image Scan`, `Inspector2 Scan`; validated by the handler).
 */
export type SignEvent = EventBridgeEvent<string, unknown>;

/** What the sign handler runs on; `signDependencies` builds the deployed function's. */
export interface SignDeps extends Observability {
  /** Receives the `Image Signed` and `Image Not Signed` events. */
  readonly eventBridge: Pick<EventBridgeClient, 'send'>;
  readonly eventBus: string;
  /** Written instead of each push's ECR host (`FUNCTION_ENV.registryHost`). */
  readonly registryHost: string | undefined;
  /** The configuration and the `Signet` built from it. */
  readonly configuration: ConfigSource<Signet>;
  /** Where every signature is recorded (the ledger table); undefined: not recorded. */
  readonly ledger?: Ledger;
}

/** Clients and observability to build `SignDeps` with instead of the deployed function's. */
export interface SignOverrides extends Partial<Observability> {
  readonly ssm?: Pick<SSMClient, 'send'>;
  readonly eventBridge?: Pick<EventBridgeClient, 'send'>;
  readonly dynamodb?: Pick<DynamoDBClient, 'send'>;
}

/**
 * The deployed function's dependencies: AWS clients created once per execution environment, the
 * configuration read from the SSM parameter with the rules Lambda can run (KMS witnesses only).
 */
export function signDependencies(env: SignFunctionEnv, overrides: SignOverrides = {}): SignDeps {
  const logger = overrides.logger ?? createLogger();
  const signetLogger = libLogger(logger);
  return {
    logger,
    metrics: overrides.metrics ?? createMetrics(),
    eventBridge: overrides.eventBridge ?? new EventBridgeClient({}),
    eventBus: env.eventBus,
    registryHost: env.registryHost,
    ...(env.ledgerTable !== undefined
      ? {
          ledger: new DynamoLedger({
            client: overrides.dynamodb ?? new DynamoDBClient({}),
            table: env.ledgerTable,
            // Signatures do not expire; these only shape decisions, which this function never writes.
            retentionDays: DEFAULTS.ledger.retentionDays,
            windowDays: DEFAULTS.reverify.windowDays,
          }),
        }
      : {}),
    configuration: new ParameterConfig<Signet>({
      parameterName: env.configParameter,
      ttlSeconds: env.configTtlSeconds,
      ssm: overrides.ssm ?? new SSMClient({}),
      baseDir: env.baseDir,
      logger: signetLogger,
      build: (config) => {
        const { config: runnable, unusable } = kmsSigningOnly(config);
        for (const rule of unusable) logger.warn('signing rule skipped in Lambda', { ...rule });
        return createSignet(runnable, { logger: signetLogger });
      },
    }),
  };
}

/** The sign handler: middy with Powertools' context injection and EMF metrics around `signPush`. */
export function makeSignHandler(deps: SignDeps): LambdaHandler<SignEvent, SignResult> {
  const { logger, metrics } = deps;
  // Start reading the configuration now (cold start, when Lambda gives the function a full CPU);
  // a failure is not fatal here: the first event reads it again and reports the error.
  deps.configuration.get().catch(() => undefined);
  return middy((event: SignEvent) => signPush(deps, event))
    .use(injectLambdaContext(logger, { resetKeys: true }))
    .use(logMetrics(metrics, { captureColdStartMetric: true }))
    .use({
      onError: (request) => {
        // Logged once here with the event id; the throw stands, so Lambda retries the event.
        logger.error('sign invocation failed', {
          eventId: (request.event as { id?: string } | undefined)?.id,
          cause: describeError(request.error),
          errorType: request.error?.name,
        });
      },
    });
}

async function signPush(deps: SignDeps, event: SignEvent): Promise<SignResult> {
  const { logger, metrics, registryHost } = deps;
  let normalized: NormalizedEvents;
  try {
    normalized = parseEcrEvent(event);
  } catch (error) {
    if (!(error instanceof InputError)) throw error;
    // Retrying a malformed event cannot help; the rule's pattern makes this a bug to look at.
    logger.error('invalid ECR event', { field: error.field, cause: error.message, eventId: event.id });
    metrics.addMetric(FUNCTION_METRICS.invalidEvents, MetricUnit.Count, 1);
    return { reports: [], ignored: [], invalid: { field: error.field, message: error.message } };
  }
  for (const ignored of normalized.ignored) {
    logger.info('event ignored', { field: ignored.field, reason: ignored.reason, eventId: event.id });
    metrics.addMetric(FUNCTION_METRICS.skipped, MetricUnit.Count, 1);
  }
  const { value: signet } = await deps.configuration.get();
  // A scan wait counts from the push as EventBridge stamped it, not from this delivery of it.
  const pushedAt = Date.parse(event.time);
  const context = Number.isFinite(pushedAt) ? { firstSeenAt: pushedAt } : {};
  const reports: SigningReport[] = [];
  for (const push of normalized.events) {
    const report = await signet.pipeline.handlePush(rehost(push, registryHost), context);
    recordMetrics(metrics, report);
    reports.push(report);
  }
  for (const scan of normalized.scans ?? []) {
    const report = await signet.pipeline.handleScan(rehost(scan, registryHost));
    recordMetrics(metrics, report);
    reports.push(report);
  }
  await recordSignatures(deps, signet, reports, event.id);

  // Signatures that exist are announced even when another rule failed: they will not be
  // written again, and an `already-signed` outcome re-announces one whose event was lost.
  const signed = reports.flatMap((report) =>
    report.outcomes
      .filter((o) => o.status === 'signed' || o.status === 'already-signed')
      .map((o) => signedDetail(report, o)),
  );
  await putSignetEvents(deps.eventBridge, deps.eventBus, DETAIL_TYPES.signed, signed);
  // An unmet condition is final for this event: announced now (a retry decides it again, so a
  // consumer may see it twice, as with every EventBridge event).
  const refused = reports.flatMap((report) =>
    notSigned(report).flatMap((o) => (o.unmet === undefined ? [] : [notSignedDetail(report, o, o.unmet)])),
  );
  await putSignetEvents(deps.eventBridge, deps.eventBus, IMAGE_NOT_SIGNED, refused);

  const failed = reports.filter(reportFailed);
  if (failed.length > 0) throw new SigningFailedError(failed.map(describeFailure).join('; '));
  return { reports, ignored: normalized.ignored };
}

/** The event's image under the configured registry host (`FUNCTION_ENV.registryHost`), if any. */
function rehost<T extends PushEvent | ScanEvent>(image: T, registryHost: string | undefined): T {
  return registryHost === undefined ? image : { ...image, registry: registryHost };
}

/**
 * Every signature of the reports into the ledger. A failed write is logged and counted, never
 * thrown: the signatures are in the registry, and a retry would announce them again for nothing.
 */
async function recordSignatures(
  deps: SignDeps,
  signet: Signet,
  reports: readonly SigningReport[],
  eventId: string,
): Promise<void> {
  if (deps.ledger === undefined) return;
  const now = Date.now();
  const signatures = reports.flatMap((report) =>
    signatureRecords(report, { eventId, recordedBy: 'lambda', rules: signet.config.signingRules, now }),
  );
  if (signatures.length === 0) return;
  try {
    await deps.ledger.write({ signatures, decisions: [], admitted: [] });
  } catch (error) {
    deps.logger.error('ledger write failed', {
      eventId,
      signatures: signatures.length,
      cause: describeError(error),
    });
    deps.metrics.addMetric(FUNCTION_METRICS.ledgerWriteFailed, MetricUnit.Count, 1);
  }
}

function recordMetrics(metrics: SignDeps['metrics'], report: SigningReport): void {
  if (report.skipped !== undefined) {
    metrics.addMetric(FUNCTION_METRICS.skipped, MetricUnit.Count, 1);
    return;
  }
  const count = (status: RuleOutcome['status']) => report.outcomes.filter((o) => o.status === status).length;
  metrics.addMetric(FUNCTION_METRICS.signed, MetricUnit.Count, count('signed'));
  metrics.addMetric(FUNCTION_METRICS.skipped, MetricUnit.Count, count('already-signed'));
  metrics.addMetric(FUNCTION_METRICS.failed, MetricUnit.Count, count('failed'));
  metrics.addMetric(FUNCTION_METRICS.notSigned, MetricUnit.Count, count('not-signed'));
  metrics.addMetric(FUNCTION_METRICS.scanWaiting, MetricUnit.Count, count('waiting'));
  metrics.addMetric(FUNCTION_METRICS.signingLatency, MetricUnit.Milliseconds, report.durationMs);
}

function signedDetail(report: SigningReport, outcome: RuleOutcome): ImageSignedDetail {
  return {
    registry: report.registry,
    repository: report.repository,
    digest: outcome.digest,
    tag: report.tag ?? null,
    rule: outcome.rule,
    witness: outcome.witness,
    keyId: outcome.keyId ?? null,
    algorithm: outcome.algorithm,
    signatureType: outcome.signatureType,
    signatureRef: outcome.signatureRef,
    status: outcome.status === 'signed' ? 'signed' : 'already-signed',
  };
}

function notSignedDetail(
  report: SigningReport,
  outcome: RuleOutcome,
  unmet: UnmetCondition,
): ImageNotSignedDetail {
  return {
    registry: report.registry,
    repository: report.repository,
    digest: outcome.digest,
    tag: report.tag ?? null,
    rule: outcome.rule,
    witness: outcome.witness,
    condition: unmet.condition,
    reason: unmet.reason,
    detail: unmet.detail,
  };
}

function describeFailure(report: SigningReport): string {
  const failures = report.outcomes
    .filter((o) => o.status === 'failed')
    .map((o) =>
      `rule "${o.rule}" (witness "${o.witness}"): ${o.errorCode ?? 'INTERNAL'} ${o.error ?? ''}`.trim(),
    );
  return `signing ${report.image} failed: ${failures.join(', ')}`;
}

/** The Lambda entry point, built from the environment at cold start. */
export const handler = handlerFromEnvironment(() =>
  makeSignHandler(signDependencies(readSignEnv(process.env))),
);
