/**
 * A local Amazon SQS (standard queues) for integration tests, on `startAwsJsonEndpoint` with the
 * AWS JSON 1.0 protocol the SDK speaks to SQS: POST / with `X-Amz-Target: AmazonSQS.<Operation>` and
 * `Content-Type: application/x-amz-json-1.0`, SigV4 `Authorization` required, errors as
 * `{"__type": "com.amazonaws.sqs#<Code>", "message"}` with the `x-amzn-errortype` header.
 *
 * Operations, with the request and response members of the SQS API reference:
 * - `SendMessage` {QueueUrl, MessageBody, MessageAttributes?} → {MessageId, MD5OfMessageBody,
 *   MD5OfMessageAttributes?}
 * - `ReceiveMessage` {QueueUrl, MaxNumberOfMessages? (1-10, default 1), VisibilityTimeout?
 *   (0-43200, default the queue's 30), WaitTimeSeconds? (0-20), MessageAttributeNames?
 *   (`All`, `.*`, names, `prefix.*`), MessageSystemAttributeNames? / AttributeNames?} →
 *   {Messages?: [{MessageId, ReceiptHandle, MD5OfBody, Body, Attributes?, MD5OfMessageAttributes?,
 *   MessageAttributes?}]}; no `Messages` member when none is visible. A long poll
 *   (WaitTimeSeconds > 0) answers as soon as a message is visible.
 * - `DeleteMessage` {QueueUrl, ReceiptHandle} → {}: with the latest receipt handle the message
 *   goes; with an older one of the same message the call succeeds and the message stays (the
 *   reference: "the request will succeed, but the message might not be deleted"); a handle never
 *   issued is `ReceiptHandleIsInvalid`.
 * - `ChangeMessageVisibility` {QueueUrl, ReceiptHandle, VisibilityTimeout} → {}.
 *
 * Every received message is invisible for its visibility timeout and comes back afterwards, with
 * a new receipt handle and `ApproximateReceiveCount` one higher. The SDK checks `MD5OfMessageBody`
 * and `MD5OfBody`; `MD5OfMessageAttributes` follows the algorithm of the SQS developer guide
 * ("Calculating the MD5 message digest for message attributes").
 */
import { createHash, randomUUID } from 'node:crypto';
import { AwsFault, startAwsJsonEndpoint } from './aws-endpoint';

/** A message attribute as the API carries it. */
export interface SqsAttributeValue {
  DataType: string;
  StringValue?: string;
  BinaryValue?: string;
}

/** One message in a queue. `messages` keeps them until they are deleted. */
export interface SqsMessage {
  readonly queueUrl: string;
  readonly messageId: string;
  readonly body: string;
  readonly attributes: Record<string, SqsAttributeValue>;
  readonly sentAt: number;
  /** How many times ReceiveMessage handed it out, and when it did first. */
  receiveCount: number;
  firstReceivedAt: number | undefined;
  /** Epoch ms from which it is visible again (0: never received, or released). */
  visibleAt: number;
  /** The latest receipt handle; earlier ones stay known to DeleteMessage. */
  receiptHandle: string | undefined;
}

/** One request, in arrival order: the operation (`ReceiveMessage`) and its JSON body. */
export interface SqsCall {
  readonly operation: string;
  readonly body: Record<string, unknown>;
}

export interface SqsEndpoint {
  readonly url: string;
  /** A queue URL on this endpoint (`<url>/<account>/<name>`). */
  queueUrl(name: string): string;
  /** Every message not deleted yet, in the order sent. */
  readonly messages: SqsMessage[];
  readonly calls: SqsCall[];
  /** Messages of a queue that ReceiveMessage would hand out now. */
  visible(queueUrl: string): SqsMessage[];
  /** Ends every visibility timeout now, as if it had run out. */
  expireVisibility(): void;
  close(): Promise<void>;
}

const DEFAULT_VISIBILITY_TIMEOUT_S = 30;
const SYSTEM_ATTRIBUTES = [
  'ApproximateReceiveCount',
  'ApproximateFirstReceiveTimestamp',
  'SenderId',
  'SentTimestamp',
] as const;

const md5 = (data: string | Buffer): string => createHash('md5').update(data).digest('hex');

/** MD5OfMessageAttributes: per attribute in name order, length-prefixed name, type, transport byte, value. */
export function md5OfMessageAttributes(attributes: Record<string, SqsAttributeValue>): string {
  const hash = createHash('md5');
  const withLength = (bytes: Buffer) => {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(bytes.length);
    hash.update(length);
    hash.update(bytes);
  };
  for (const name of Object.keys(attributes).sort()) {
    const attribute = attributes[name] as SqsAttributeValue;
    const binary = attribute.DataType.split('.')[0] === 'Binary';
    withLength(Buffer.from(name, 'utf8'));
    withLength(Buffer.from(attribute.DataType, 'utf8'));
    hash.update(Buffer.from([binary ? 2 : 1]));
    withLength(
      binary
        ? Buffer.from(attribute.BinaryValue ?? '', 'base64')
        : Buffer.from(attribute.StringValue ?? '', 'utf8'),
    );
  }
  return hash.digest('hex');
}

function integer(body: Record<string, unknown>, name: string, min: number, max: number): number | undefined {
  const value = body[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new AwsFault(
      'InvalidParameterValue',
      `Value ${JSON.stringify(value)} for parameter ${name} is invalid. Reason: Must be between ${min} and ${max}, if provided.`,
    );
  }
  return value;
}

function requireString(body: Record<string, unknown>, name: string): string {
  const value = body[name];
  if (typeof value !== 'string' || value === '') {
    throw new AwsFault('MissingParameter', `The request must contain the parameter ${name}.`);
  }
  return value;
}

function stringList(body: Record<string, unknown>, name: string): string[] {
  const value = body[name];
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

export async function startSqsEndpoint(options: { account?: string } = {}): Promise<SqsEndpoint> {
  const account = options.account ?? '111122223333';
  const messages: SqsMessage[] = [];
  // Every receipt handle issued, to the message it was issued for.
  const handles = new Map<string, SqsMessage>();
  let closing = false;

  const visible = (queueUrl: string, now = Date.now()) =>
    messages.filter((m) => m.queueUrl === queueUrl && m.visibleAt <= now);

  const operations: Record<string, (body: Record<string, unknown>) => Promise<unknown> | unknown> = {
    SendMessage(body) {
      const queueUrl = requireString(body, 'QueueUrl');
      const messageBody = requireString(body, 'MessageBody');
      const attributes = (body['MessageAttributes'] ?? {}) as Record<string, SqsAttributeValue>;
      const message: SqsMessage = {
        queueUrl,
        messageId: randomUUID(),
        body: messageBody,
        attributes,
        sentAt: Date.now(),
        receiveCount: 0,
        firstReceivedAt: undefined,
        visibleAt: 0,
        receiptHandle: undefined,
      };
      messages.push(message);
      return {
        MessageId: message.messageId,
        MD5OfMessageBody: md5(messageBody),
        ...(Object.keys(attributes).length > 0
          ? { MD5OfMessageAttributes: md5OfMessageAttributes(attributes) }
          : {}),
      };
    },

    async ReceiveMessage(body) {
      const queueUrl = requireString(body, 'QueueUrl');
      const max = integer(body, 'MaxNumberOfMessages', 1, 10) ?? 1;
      const timeout = integer(body, 'VisibilityTimeout', 0, 43_200) ?? DEFAULT_VISIBILITY_TIMEOUT_S;
      const wait = integer(body, 'WaitTimeSeconds', 0, 20) ?? 0;
      const deadline = Date.now() + wait * 1000;
      while (visible(queueUrl).length === 0 && Date.now() < deadline && !closing) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      const now = Date.now();
      const batch = visible(queueUrl, now).slice(0, max);
      if (batch.length === 0) return {};
      const wantedNames = stringList(body, 'MessageAttributeNames');
      const wantedSystem = new Set([
        ...stringList(body, 'MessageSystemAttributeNames'),
        ...stringList(body, 'AttributeNames'),
      ]);
      const attributeWanted = (name: string) =>
        wantedNames.some(
          (w) =>
            w === 'All' || w === '.*' || w === name || (w.endsWith('.*') && name.startsWith(w.slice(0, -1))),
        );
      return {
        Messages: batch.map((message) => {
          message.receiveCount++;
          message.firstReceivedAt ??= now;
          message.visibleAt = now + timeout * 1000;
          message.receiptHandle = randomUUID();
          handles.set(message.receiptHandle, message);
          const system: Record<(typeof SYSTEM_ATTRIBUTES)[number], string> = {
            ApproximateReceiveCount: String(message.receiveCount),
            ApproximateFirstReceiveTimestamp: String(message.firstReceivedAt),
            SenderId: 'AIDASIGNETTEST',
            SentTimestamp: String(message.sentAt),
          };
          const attributes = Object.fromEntries(
            SYSTEM_ATTRIBUTES.filter((n) => wantedSystem.has('All') || wantedSystem.has(n)).map((n) => [
              n,
              system[n],
            ]),
          );
          const messageAttributes = Object.fromEntries(
            Object.entries(message.attributes).filter(([name]) => attributeWanted(name)),
          );
          return {
            MessageId: message.messageId,
            ReceiptHandle: message.receiptHandle,
            MD5OfBody: md5(message.body),
            Body: message.body,
            ...(Object.keys(attributes).length > 0 ? { Attributes: attributes } : {}),
            ...(Object.keys(messageAttributes).length > 0
              ? {
                  MessageAttributes: messageAttributes,
                  MD5OfMessageAttributes: md5OfMessageAttributes(messageAttributes),
                }
              : {}),
          };
        }),
      };
    },

    DeleteMessage(body) {
      requireString(body, 'QueueUrl');
      const handle = requireString(body, 'ReceiptHandle');
      const message = handles.get(handle);
      if (message === undefined) {
        throw new AwsFault('ReceiptHandleIsInvalid', `The input receipt handle "${handle}" is not valid.`);
      }
      // An older handle of a message received again since: accepted, and the message stays.
      if (message.receiptHandle !== handle) return {};
      const index = messages.indexOf(message);
      if (index >= 0) messages.splice(index, 1);
      return {};
    },

    ChangeMessageVisibility(body) {
      requireString(body, 'QueueUrl');
      const handle = requireString(body, 'ReceiptHandle');
      const timeout = integer(body, 'VisibilityTimeout', 0, 43_200);
      if (timeout === undefined) {
        throw new AwsFault('MissingParameter', 'The request must contain the parameter VisibilityTimeout.');
      }
      const message = handles.get(handle);
      if (message === undefined || message.receiptHandle !== handle) {
        throw new AwsFault('ReceiptHandleIsInvalid', `The input receipt handle "${handle}" is not valid.`);
      }
      if (!messages.includes(message) || message.visibleAt <= Date.now()) {
        throw new AwsFault('MessageNotInflight', 'The message referred to is not in flight.');
      }
      message.visibleAt = Date.now() + timeout * 1000;
      return {};
    },
  };

  const endpoint = await startAwsJsonEndpoint({
    targetPrefix: 'AmazonSQS',
    protocol: '1.0',
    errorTypePrefix: 'com.amazonaws.sqs#',
    handlers: operations,
    onClose: () => (closing = true),
  });
  const url = endpoint.url;
  return {
    url,
    queueUrl: (name) => `${url}/${account}/${name}`,
    messages,
    get calls(): SqsCall[] {
      return endpoint.calls.map(({ target, body }) => ({
        operation: target.slice('AmazonSQS.'.length),
        body: body as Record<string, unknown>,
      }));
    },
    visible: (queueUrl) => visible(queueUrl),
    expireVisibility() {
      for (const message of messages) message.visibleAt = Math.min(message.visibleAt, Date.now());
    },
    close: () => endpoint.close(),
  };
}
