/**
 * A local Amazon SQS for integration tests: `SendMessage` over the AWS JSON 1.0 protocol the SDK
 * speaks to SQS (`X-Amz-Target: AmazonSQS.SendMessage`, `Content-Type: application/x-amz-json-1.0`,
 * SigV4 `Authorization` required), answering `MD5OfMessageBody` as SQS does (the SDK checks it).
 * Messages are recorded per queue URL path.
 */
import { createHash, randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One message as SQS stored it. */
export interface SqsMessage {
  readonly queueUrl: string;
  readonly body: string;
  readonly attributes: Record<string, { DataType: string; StringValue?: string }>;
}

export interface SqsEndpoint {
  readonly url: string;
  /** A queue URL on this endpoint (`<url>/<account>/<name>`). */
  queueUrl(name: string): string;
  readonly messages: SqsMessage[];
  close(): Promise<void>;
}

const CONTENT_TYPE = 'application/x-amz-json-1.0';

export async function startSqsEndpoint(options: { account?: string } = {}): Promise<SqsEndpoint> {
  const account = options.account ?? '111122223333';
  const messages: SqsMessage[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const reply = (status: number, body: unknown, errorType?: string) => {
        const text = JSON.stringify(body);
        res.writeHead(status, {
          'content-type': CONTENT_TYPE,
          'content-length': Buffer.byteLength(text),
          'x-amzn-requestid': randomUUID(),
          ...(errorType !== undefined ? { 'x-amzn-errortype': errorType } : {}),
        });
        res.end(text);
      };
      const fault = (type: string, message: string) =>
        reply(400, { __type: `com.amazonaws.sqs#${type}`, message }, type);
      if (!/^AWS4-HMAC-SHA256 Credential=/.test(req.headers.authorization ?? '')) {
        return fault('MissingAuthenticationToken', 'Missing Authentication Token');
      }
      if ((req.headers['content-type'] ?? '').split(';')[0] !== CONTENT_TYPE) {
        return fault('InvalidParameterValue', `Content-Type must be ${CONTENT_TYPE}`);
      }
      const target = String(req.headers['x-amz-target'] ?? '');
      let body: { QueueUrl?: string; MessageBody?: string; MessageAttributes?: SqsMessage['attributes'] };
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        return fault('InvalidParameterValue', 'the request body is not JSON');
      }
      if (target !== 'AmazonSQS.SendMessage')
        return fault('UnsupportedOperation', `${target} is not supported here`);
      if (
        typeof body.QueueUrl !== 'string' ||
        typeof body.MessageBody !== 'string' ||
        body.MessageBody === ''
      ) {
        return fault('MissingParameter', 'QueueUrl and MessageBody are required');
      }
      messages.push({
        queueUrl: body.QueueUrl,
        body: body.MessageBody,
        attributes: body.MessageAttributes ?? {},
      });
      return reply(200, {
        MessageId: randomUUID(),
        MD5OfMessageBody: createHash('md5').update(body.MessageBody, 'utf8').digest('hex'),
      });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    queueUrl: (name) => `${url}/${account}/${name}`,
    messages,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      }),
  };
}
