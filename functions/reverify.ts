/**
 * The re-verification Lambda, invoked by an EventBridge Scheduler schedule every
 * `reverify.intervalSeconds` (rounded up to whole minutes): one round over the images the verify
 * function recorded as admitted within `reverify.windowDays`, checked again against the current
 * policies, keys and signatures (the same `Reverifier` as `signet serve`). A new finding is saved
 * in the ledger table and put on the bus as `Image Trust Lost`, once.
 *
 * A function of its own, not a mode of the verify function: a round reads registries and KMS for
 * minutes where admission has 10 s; it needs the ledger's read and `events:PutEvents`, which the
 * function behind the public Function URL should not hold; rounds must never overlap (reserved
 * concurrency 1), which would throttle admission if they shared a function; and the verify
 * bundle stays as small as a cold admission needs.
 */
import middy from '@middy/core';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { SSMClient } from '@aws-sdk/client-ssm';
import { describeError } from '../lib/core/errors';
import type { Telemetry } from '../lib/core/telemetry';
import { KeyRing } from '../lib/keys/keyring';
import { DynamoLedger } from '../lib/ledger/dynamodb';
import { signingTimes } from '../lib/ledger/records';
import type { Ledger } from '../lib/ledger/types';
import { RegistryClients } from '../lib/registry/clients';
import { trustLostDetail } from '../lib/reverify/events';
import { Reverifier, type FindingSink } from '../lib/reverify/reverifier';
import { ImageVerifier } from '../lib/verification/verifier';
import { ParameterConfig, type ConfigSource } from './config';
import { FUNCTION_METRICS, readReverifyEnv, type ReverifyFunctionEnv } from './env';
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

/** What a configuration builds: the registry clients and the ledger (its retention and window). */
export interface Reverification {
  readonly registries: RegistryClients;
  readonly ledger: Ledger;
}

/** What one invocation did. */
export type ReverifyResult =
  | { readonly skipped: string }
  | {
      readonly checked: number;
      readonly trusted: number;
      readonly opened: number;
      readonly stillLost: number;
      readonly resolved: number;
      readonly unverifiable: number;
    };

/** What the re-verification handler runs on; `reverifyDependencies` builds the deployed function's. */
export interface ReverifyDeps extends Observability {
  readonly configuration: ConfigSource<Reverification>;
  /** Receives `Image Trust Lost`. */
  readonly eventBridge: Pick<EventBridgeClient, 'send'>;
  readonly eventBus: string;
}

/** Clients and observability to build `ReverifyDeps` with instead of the deployed function's. */
export interface ReverifyOverrides extends Partial<Observability> {
  readonly ssm?: Pick<SSMClient, 'send'>;
  readonly eventBridge?: Pick<EventBridgeClient, 'send'>;
  readonly dynamodb?: Pick<DynamoDBClient, 'send'>;
}

/** The deployed function's dependencies: AWS clients created once per execution environment. */
export function reverifyDependencies(
  env: ReverifyFunctionEnv,
  overrides: ReverifyOverrides = {},
): ReverifyDeps {
  const logger = overrides.logger ?? createLogger();
  const signetLogger = libLogger(logger);
  const dynamodb = overrides.dynamodb ?? new DynamoDBClient({});
  return {
    logger,
    metrics: overrides.metrics ?? createMetrics(),
    eventBridge: overrides.eventBridge ?? new EventBridgeClient({}),
    eventBus: env.eventBus,
    configuration: new ParameterConfig<Reverification>({
      parameterName: env.configParameter,
      ttlSeconds: env.configTtlSeconds,
      ssm: overrides.ssm ?? new SSMClient({}),
      baseDir: env.baseDir,
      logger: signetLogger,
      build: (config) => ({
        registries: new RegistryClients(config.registries),
        ledger: new DynamoLedger({
          client: dynamodb,
          table: env.ledgerTable,
          retentionDays: config.ledger.retentionDays,
          windowDays: config.reverify?.windowDays ?? 1,
        }),
      }),
    }),
  };
}

/** The handler: one round per scheduled invocation; whatever the schedule sends is ignored. */
export function makeReverifyHandler(deps: ReverifyDeps): LambdaHandler<unknown, ReverifyResult> {
  const { logger, metrics } = deps;
  deps.configuration.get().catch(() => undefined);
  return middy(() => round(deps))
    .use(injectLambdaContext(logger, { resetKeys: true }))
    .use(logMetrics(metrics, { captureColdStartMetric: true }))
    .use({
      onError: (request) => {
        // The next scheduled round tries again; the schedule does not retry.
        logger.error('re-verification round failed', { cause: describeError(request.error) });
      },
    });
}

async function round(deps: ReverifyDeps): Promise<ReverifyResult> {
  const { logger, metrics } = deps;
  const { config, value } = await deps.configuration.get();
  const settings = config.reverify;
  if (settings === undefined) {
    logger.warn('re-verification is not configured (no reverify section); nothing to do');
    return { skipped: 'reverify is not configured' };
  }
  const signetLogger = libLogger(logger);
  const sink: FindingSink = {
    announce: (findings) =>
      putSignetEvents(deps.eventBridge, deps.eventBus, DETAIL_TYPES.trustLost, findings.map(trustLostDetail)),
  };
  const telemetry: Telemetry = {
    reverification: (outcome) => {
      const name =
        outcome === 'trusted'
          ? FUNCTION_METRICS.reverifyTrusted
          : outcome === 'unverifiable'
            ? FUNCTION_METRICS.reverifyUnverifiable
            : undefined;
      if (name !== undefined) metrics.addMetric(name, MetricUnit.Count, 1);
    },
    imageTrustLost: () => metrics.addMetric(FUNCTION_METRICS.trustLost, MetricUnit.Count, 1),
  };
  const reverifier = new Reverifier({ ledger: value.ledger, logger: signetLogger, sink, telemetry });
  // A key ring of the round's own: a key disabled or removed since admission shows.
  const keys = new KeyRing({ witnesses: config.witnesses, baseDir: config.baseDir });
  const summary = await reverifier.round({
    verifier: new ImageVerifier({
      config,
      registries: value.registries,
      keys,
      logger: signetLogger,
      signingTime: signingTimes(value.ledger),
    }),
    revocations: config.revocations,
    settings,
    dispose: () => keys.close(),
  });
  return {
    checked: summary.checked,
    trusted: summary.trusted,
    opened: summary.opened.length,
    stillLost: summary.stillLost,
    resolved: summary.resolved,
    unverifiable: summary.unverifiable,
  };
}

/** The Lambda entry point, built from the environment at cold start. */
export const handler = handlerFromEnvironment(() =>
  makeReverifyHandler(reverifyDependencies(readReverifyEnv(process.env))),
);
