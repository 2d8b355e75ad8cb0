/**
 * `signet replay`: re-delivers the AWS deployment's dead-letter queue. Each message's original
 * `ECR Image Action` event (`lib/events/dead-letter.ts` reads every shape the queue holds) runs
 * through the signing pipeline with the rules the sign function runs, and the message is deleted
 * only once nothing is left to sign for it. Messages that fail again, that Signet cannot read, or
 * whose image no rule covers stay in the queue, invisible until their visibility timeout ends, and
 * are reported by message id.
 */
import {
  ChangeMessageVisibilityCommand,
  DeleteMessageCommand,
  ReceiveMessageCommand,
  SQSClient,
  type Message,
} from '@aws-sdk/client-sqs';
import { readRegistryHost } from '../functions/env';
import { checkRegistryHost } from '../lib/config/hosts';
import { kmsSigningOnly } from '../lib/config/kms-only';
import type { SignetConfig } from '../lib/config/types';
import { describeError, InputError } from '../lib/core/errors';
import type { Logger } from '../lib/core/logger';
import { DLQ_ATTRIBUTES } from '../lib/events/dead-letter';
import { createSignet } from '../lib/signet';
import { isSettled, planReplay, replayPlan, type ReplayPlan, type ReplayResult } from '../lib/signing/replay';
import { RuleSet } from '../lib/signing/rules';

/** What `signet replay` was asked to do, validated. */
export interface ReplayCommand {
  readonly queueUrl: string;
  /** Receive at most this many messages; default: until the queue has none visible. */
  readonly max: number | undefined;
  /** Read and plan only: nothing is signed or deleted, and the messages are made visible again. */
  readonly dryRun: boolean;
  /** The SQS endpoint; default: the SDK's (the queue URL's host). */
  readonly endpoint: string | undefined;
  /** Written instead of the ECR host, as the sign function's `FUNCTION_ENV.registryHost`. */
  readonly registryHost: string | undefined;
}

/** One message of the run. */
export interface ReplayedMessage {
  readonly messageId: string;
  /** `would-sign`: a dry run found rules to sign with. */
  readonly result: ReplayResult['$case'] | 'would-sign';
  /** Deleted from the queue (never in a dry run). */
  readonly deleted: boolean;
  readonly images?: readonly string[];
  readonly rules?: readonly string[];
  /** Signatures this message's replay wrote, and found already written. */
  readonly signed?: number;
  readonly alreadySigned?: number;
  /** `rule (witness): CODE message` of each rule that failed again. */
  readonly failures?: readonly string[];
  /** Why there is nothing to sign, or nothing that may sign it. */
  readonly reason?: string;
  /** For an unreadable message: the field at fault and why. */
  readonly field?: string;
  readonly error?: string;
  /** Why it was dead-lettered, from its message attributes, when they say. */
  readonly deadLettered?: string;
  /** How often SQS has handed this message out, this time included. */
  readonly receiveCount?: number;
}

/** What `signet replay` prints. */
export interface ReplaySummary {
  readonly queue: string;
  readonly dryRun: boolean;
  /** Messages received. */
  readonly received: number;
  /** Messages settled and deleted. */
  readonly replayed: number;
  /** Signatures written by this run. */
  readonly signed: number;
  /** Signatures that were in the registry already. */
  readonly alreadySigned: number;
  /** Messages whose signing failed again. */
  readonly failed: number;
  /** Messages Signet cannot read as an ECR push event. */
  readonly malformed: number;
  /** Messages whose image no enabled automatic KMS rule covers. */
  readonly unmatched: number;
  /** Messages left in the queue. */
  readonly left: number;
  /** Set when the run stopped early because the queue could no longer be read. */
  readonly error?: string;
  readonly messages: readonly ReplayedMessage[];
}

/** Exit status: 1 when a message stays in the queue for a reason a replay cannot settle. */
export function replayExitCode(summary: ReplaySummary): number {
  if (summary.error !== undefined) return 1;
  if (summary.dryRun) return summary.malformed + summary.unmatched > 0 ? 1 : 0;
  return summary.left > 0 ? 1 : 0;
}

/**
 * How long a received message stays invisible: long enough to sign a batch of ten through
 * registry and KMS retries, short enough that a message left in the queue is soon back.
 */
export const REPLAY_VISIBILITY_TIMEOUT_S = 120;
/** A brief long poll asks every SQS server, so an empty answer means an empty queue. */
const RECEIVE_WAIT_S = 1;
const SQS_BATCH = 10;
const QUEUE_URL_EXAMPLE = 'https://sqs.us-east-1.amazonaws.com/123456789012/signet-dead-letters';

/** Validates the options of `signet replay`; each error names its option. */
export function replayCommand(
  values: {
    queue?: string;
    max?: string;
    'dry-run'?: boolean;
    endpoint?: string;
    'registry-host'?: string;
  },
  env: NodeJS.ProcessEnv = process.env,
): ReplayCommand {
  const queueUrl = values.queue;
  if (queueUrl === undefined) {
    throw new InputError(
      'REQUEST_INVALID',
      '--queue',
      `is required: the dead-letter queue URL (${QUEUE_URL_EXAMPLE})`,
    );
  }
  checkQueueUrl(queueUrl);
  let max: number | undefined;
  if (values.max !== undefined) {
    max = Number(values.max);
    if (!Number.isSafeInteger(max) || max < 1) {
      throw new InputError(
        'REQUEST_INVALID',
        '--max',
        `must be a positive integer, got ${JSON.stringify(values.max)}`,
      );
    }
  }
  if (values.endpoint !== undefined) checkHttpUrl(values.endpoint, '--endpoint');
  // The sign function's own variable is the default, so a replay signs for the same host.
  const registryHost = values['registry-host'] ?? readRegistryHost(env);
  if (registryHost !== undefined) {
    const problem = checkRegistryHost(registryHost);
    if (problem !== undefined) throw new InputError('REQUEST_INVALID', '--registry-host', problem);
  }
  return { queueUrl, max, dryRun: values['dry-run'] === true, endpoint: values.endpoint, registryHost };
}

function checkQueueUrl(value: string): void {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new InputError('REQUEST_INVALID', '--queue', `must be a queue URL such as ${QUEUE_URL_EXAMPLE}`);
  }
  const segments = url.pathname.split('/').filter(Boolean);
  if ((url.protocol !== 'https:' && url.protocol !== 'http:') || segments.length !== 2) {
    throw new InputError(
      'REQUEST_INVALID',
      '--queue',
      `must be a queue URL (https://<endpoint>/<account>/<queue name>) such as ${QUEUE_URL_EXAMPLE}, got ${JSON.stringify(value)}`,
    );
  }
}

function checkHttpUrl(value: string, field: string): void {
  let url: URL | undefined;
  try {
    url = new URL(value);
  } catch {
    url = undefined;
  }
  if (url === undefined || (url.protocol !== 'https:' && url.protocol !== 'http:')) {
    throw new InputError('REQUEST_INVALID', field, `must be an http(s) URL, got ${JSON.stringify(value)}`);
  }
}

/** The region of a queue URL on an SQS endpoint (`sqs.<region>.amazonaws.com`), if it names one. */
export function queueRegion(queueUrl: string): string | undefined {
  const host = new URL(queueUrl).hostname.toLowerCase();
  const match =
    /^sqs(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$/.exec(host) ??
    /^([a-z0-9-]+)\.queue\.amazonaws\.com(?:\.cn)?$/.exec(host);
  return match?.[1];
}

/**
 * Runs a replay to the end and returns its summary; throws only when the queue cannot be read.
 * Signs with the rules the sign function runs: those of `config` whose witness is a KMS key.
 */
export async function replayDeadLetters(
  command: ReplayCommand,
  deps: { readonly config: SignetConfig; readonly logger: Logger },
): Promise<ReplaySummary> {
  const { logger } = deps;
  const region = queueRegion(command.queueUrl);
  const sqs = new SQSClient({
    ...(region !== undefined ? { region } : {}),
    ...(command.endpoint !== undefined ? { endpoint: command.endpoint } : {}),
  });
  const { config, unusable } = kmsSigningOnly(deps.config);
  for (const rule of unusable)
    logger.warn('signing rule skipped: the sign function does not run it', { ...rule });
  const signet = createSignet(config, { logger });
  const options = {
    rules: new RuleSet(
      config.signingRules,
      config.registries.map((r) => r.host),
    ),
    registryHost: command.registryHost,
  };

  const handle = async (message: Message): Promise<ReplayedMessage> => {
    const messageId = message.MessageId ?? '(no message id)';
    const about = {
      messageId,
      ...deadLetterReason(message),
      ...(message.Attributes?.ApproximateReceiveCount !== undefined
        ? { receiveCount: Number(message.Attributes.ApproximateReceiveCount) }
        : {}),
    };
    let plan: ReplayPlan;
    let result: ReplayResult;
    try {
      plan = planReplay(message.Body ?? '', options);
      if (command.dryRun) return dryRunEntry(about, plan);
      result = await replayPlan(plan, signet.pipeline);
    } catch (error) {
      // Bad input and signing failures are results, not throws: anything thrown is a bug, and
      // the message stays.
      logger.error('replay failed', { messageId, cause: describeError(error) });
      return { ...about, result: 'failed', deleted: false, error: describeError(error) };
    }
    const described = { ...about, ...describeResult(result) };
    if (!isSettled(result)) {
      logger.warn('dead letter left in the queue', { ...described });
      return { ...described, deleted: false };
    }
    try {
      await sqs.send(
        new DeleteMessageCommand({ QueueUrl: command.queueUrl, ReceiptHandle: message.ReceiptHandle }),
      );
    } catch (error) {
      // Signed but not deleted: the next replay finds it already signed and deletes it then.
      logger.warn('dead letter replayed but not deleted', { messageId, cause: describeError(error) });
      return { ...described, deleted: false, error: `DeleteMessage failed: ${describeError(error)}` };
    }
    logger.info('dead letter replayed', { ...described });
    return { ...described, deleted: true };
  };

  const messages: ReplayedMessage[] = [];
  const seen = new Map<string, string | undefined>();
  let receiveError: string | undefined;
  try {
    while (command.max === undefined || seen.size < command.max) {
      const wanted = Math.min(SQS_BATCH, (command.max ?? Number.POSITIVE_INFINITY) - seen.size);
      let received: Message[];
      try {
        received = await receive(sqs, command.queueUrl, wanted);
      } catch (error) {
        // Nothing read yet: the queue cannot be read at all. Later: report what was done.
        if (seen.size === 0) {
          throw new Error(`cannot receive from ${command.queueUrl}: ${describeError(error)}`, {
            cause: error,
          });
        }
        receiveError = `ReceiveMessage failed: ${describeError(error)}`;
        logger.error('replay stopped', { cause: receiveError });
        break;
      }
      const fresh: Message[] = [];
      for (const message of received) {
        const id = message.MessageId ?? '';
        // A message back within this run outlived its visibility timeout; it was handled already.
        if (!seen.has(id)) fresh.push(message);
        seen.set(id, message.ReceiptHandle);
      }
      if (fresh.length === 0) break;
      messages.push(...(await Promise.all(fresh.map(handle))));
    }
    if (command.dryRun) await releaseAll(sqs, command.queueUrl, seen, logger);
  } finally {
    signet.keys.close();
    sqs.destroy();
  }
  return summarize(command, messages, receiveError);
}

async function receive(sqs: SQSClient, queueUrl: string, max: number): Promise<Message[]> {
  const received = await sqs.send(
    new ReceiveMessageCommand({
      QueueUrl: queueUrl,
      MaxNumberOfMessages: max,
      WaitTimeSeconds: RECEIVE_WAIT_S,
      VisibilityTimeout: REPLAY_VISIBILITY_TIMEOUT_S,
      MessageAttributeNames: ['All'],
      MessageSystemAttributeNames: ['ApproximateReceiveCount', 'SentTimestamp'],
    }),
  );
  return received.Messages ?? [];
}

function dryRunEntry(about: Pick<ReplayedMessage, 'messageId'>, plan: ReplayPlan): ReplayedMessage {
  return plan.$case === 'sign'
    ? { ...about, result: 'would-sign', deleted: false, images: plan.pushes.map(imageOf), rules: plan.rules }
    : { ...about, ...describeResult(plan), deleted: false };
}

/** A dry run leaves the queue as it found it: every message it received is visible again. */
async function releaseAll(
  sqs: SQSClient,
  queueUrl: string,
  handles: ReadonlyMap<string, string | undefined>,
  logger: Logger,
): Promise<void> {
  for (const [messageId, receiptHandle] of handles) {
    try {
      await sqs.send(
        new ChangeMessageVisibilityCommand({
          QueueUrl: queueUrl,
          ReceiptHandle: receiptHandle,
          VisibilityTimeout: 0,
        }),
      );
    } catch (error) {
      logger.warn('could not make a dead letter visible again', { messageId, cause: describeError(error) });
    }
  }
}

function summarize(
  command: ReplayCommand,
  messages: readonly ReplayedMessage[],
  error: string | undefined,
): ReplaySummary {
  const count = (result: ReplayedMessage['result']) => messages.filter((m) => m.result === result).length;
  const sum = (of: (m: ReplayedMessage) => number | undefined) =>
    messages.reduce((total, m) => total + (of(m) ?? 0), 0);
  return {
    queue: command.queueUrl,
    dryRun: command.dryRun,
    received: messages.length,
    replayed: messages.filter((m) => m.deleted).length,
    signed: sum((m) => m.signed),
    alreadySigned: sum((m) => m.alreadySigned),
    failed: count('failed'),
    malformed: count('invalid'),
    unmatched: count('unmatched'),
    left: messages.filter((m) => !m.deleted).length,
    ...(error !== undefined ? { error } : {}),
    messages,
  };
}

/** The summary fields of a result (or of a plan that needs no signing). */
function describeResult(result: ReplayResult): Omit<ReplayedMessage, 'messageId' | 'deleted'> {
  switch (result.$case) {
    case 'invalid':
      return { result: result.$case, field: result.field, error: result.message };
    case 'nothing-to-sign':
      return { result: result.$case, reason: result.reasons.join('; ') };
    case 'unmatched':
      return {
        result: result.$case,
        images: result.images,
        reason: 'no enabled automatic signing rule with a KMS witness covers it',
      };
    case 'signed':
    case 'failed': {
      const outcomes = result.reports.flatMap((r) => r.outcomes);
      const failures = outcomes
        .filter((o) => o.status === 'failed')
        .map((o) => `${o.rule} (${o.witness}): ${o.errorCode ?? 'INTERNAL'} ${o.error ?? ''}`.trim());
      const skipped = result.reports.filter((r) => r.skipped !== undefined).map((r) => r.skipped as string);
      return {
        result: result.$case,
        images: result.reports.map((r) => r.image),
        signed: outcomes.filter((o) => o.status === 'signed').length,
        alreadySigned: outcomes.filter((o) => o.status === 'already-signed').length,
        ...(failures.length > 0 ? { failures } : {}),
        ...(skipped.length > 0 ? { reason: skipped.join('; ') } : {}),
      };
    }
  }
}

const imageOf = (push: { registry: string; repository: string; digest: string; tag: string | undefined }) =>
  `${push.registry}/${push.repository}${push.tag !== undefined ? `:${push.tag}` : ''}@${push.digest}`;

/**
 * Why a message was dead-lettered, from the attributes whoever wrote it set: the failure function
 * (`ErrorType`, `ErrorMessage`), EventBridge (`ERROR_CODE`, `ERROR_MESSAGE`) or Lambda's own
 * dead-letter queue (`ErrorCode`, `ErrorMessage`).
 */
function deadLetterReason(message: Message): { deadLettered?: string } {
  const attributes = message.MessageAttributes ?? {};
  const text = (name: string) => attributes[name]?.StringValue;
  const kind = text(DLQ_ATTRIBUTES.errorType) ?? text('ERROR_CODE') ?? text('ErrorCode');
  const detail = text(DLQ_ATTRIBUTES.errorMessage) ?? text('ERROR_MESSAGE');
  if (kind === undefined && detail === undefined) return {};
  return { deadLettered: [kind, detail].filter((part) => part !== undefined).join(': ') };
}
