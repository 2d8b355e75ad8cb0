/**
 * A local HTTP endpoint that speaks the AWS JSON protocol (1.1: KMS, ECR, SSM, EventBridge; 1.0:
 * SQS) the way AWS does, so integration tests run the real AWS SDK clients against it: POST / with
 * `X-Amz-Target: <prefix>.<Operation>` and `Content-Type: application/x-amz-json-<version>`, SigV4
 * `Authorization` required, errors as `{"__type", "message"}` plus the `x-amzn-errortype` header.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** An AWS error answer: `type` becomes `__type` (the SDK error's `name`), with an HTTP status. */
export class AwsFault extends Error {
  override readonly name = 'AwsFault';

  constructor(
    readonly type: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

/** Answers one operation: the parsed JSON request body in, the JSON response body out (or an AwsFault thrown). */
export type AwsHandler = (
  body: any, // eslint-disable-line @typescript-eslint/no-explicit-any
  req: { target: string; headers: IncomingHttpHeaders },
) => unknown | Promise<unknown>;

/** One authenticated request, in arrival order. `target` is the whole `X-Amz-Target` (`TrentService.Sign`). */
export interface AwsCall {
  target: string;
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

/** A running endpoint. */
export interface AwsJsonEndpoint {
  /** `http://127.0.0.1:<port>`: pass as the SDK client's `endpoint`. */
  url: string;
  calls: AwsCall[];
  close(): Promise<void>;
}

const SIGV4 =
  /^AWS4-HMAC-SHA256 Credential=[^/\s,]+\/\d{8}\/[^/\s,]+\/[^/\s,]+\/aws4_request, ?SignedHeaders=[a-z0-9;-]+, ?Signature=[0-9a-f]{64}$/;

function reply(
  res: ServerResponse,
  contentType: string,
  status: number,
  body: unknown,
  errorType?: string,
): void {
  const text = JSON.stringify(body ?? {});
  res.writeHead(status, {
    'content-type': contentType,
    'content-length': Buffer.byteLength(text),
    'x-amzn-requestid': randomUUID(),
    ...(errorType !== undefined ? { 'x-amzn-errortype': errorType } : {}),
  });
  res.end(text);
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * Starts the endpoint on 127.0.0.1 (a free port). Requests without a SigV4 `Authorization` header
 * are refused (MissingAuthenticationTokenException, or IncompleteSignatureException when
 * malformed); the signature itself is not checked. Unknown operations get
 * UnknownOperationException; a handler's AwsFault becomes its status and `__type`; any other
 * thrown error becomes a 500 InternalFailure.
 */
export async function startAwsJsonEndpoint(options: {
  targetPrefix: string;
  handlers: Record<string, AwsHandler>;
  /** The JSON protocol version; default 1.1. */
  protocol?: '1.0' | '1.1';
  /** Put before `__type` in error bodies, as some services do (`com.amazonaws.sqs#`). */
  errorTypePrefix?: string;
  /** Called when `close()` begins (to end long polls). */
  onClose?: () => void;
}): Promise<AwsJsonEndpoint> {
  const calls: AwsCall[] = [];
  const CONTENT_TYPE = `application/x-amz-json-${options.protocol ?? '1.1'}`;
  const fault = (res: ServerResponse, type: string, message: string, status = 400): void =>
    reply(res, CONTENT_TYPE, status, { __type: `${options.errorTypePrefix ?? ''}${type}`, message }, type);
  const server = createServer((req, res) => {
    void (async () => {
      const text = await readBody(req);
      if (req.method !== 'POST' || (req.url ?? '/').split('?')[0] !== '/') {
        return fault(
          res,
          'UnknownOperationException',
          `${req.method ?? ''} ${req.url ?? ''} is not an operation`,
        );
      }
      const authorization = req.headers.authorization;
      if (authorization === undefined || authorization === '') {
        return fault(res, 'MissingAuthenticationTokenException', 'Missing Authentication Token');
      }
      if (!SIGV4.test(authorization)) {
        return fault(
          res,
          'IncompleteSignatureException',
          `Authorization header is not a SigV4 signature: ${authorization}`,
        );
      }
      const target = String(req.headers['x-amz-target'] ?? '');
      const contentType = String(req.headers['content-type'] ?? '')
        .split(';')[0]
        ?.trim();
      let body: unknown;
      try {
        body = text === '' ? {} : JSON.parse(text);
      } catch {
        return fault(res, 'SerializationException', 'request body is not JSON');
      }
      calls.push({ target, body });
      if (contentType !== CONTENT_TYPE) {
        return fault(
          res,
          'UnknownOperationException',
          `Content-Type must be ${CONTENT_TYPE}, got ${contentType ?? ''}`,
        );
      }
      const prefix = `${options.targetPrefix}.`;
      const handler = target.startsWith(prefix) ? options.handlers[target.slice(prefix.length)] : undefined;
      if (handler === undefined)
        return fault(res, 'UnknownOperationException', `unknown operation ${target}`);
      try {
        return reply(res, CONTENT_TYPE, 200, await handler(body, { target, headers: req.headers }));
      } catch (err) {
        if (err instanceof AwsFault) return fault(res, err.type, err.message, err.status);
        return fault(res, 'InternalFailure', err instanceof Error ? err.message : String(err), 500);
      }
    })().catch(() => {
      if (!res.headersSent) fault(res, 'InternalFailure', 'the test endpoint failed', 500);
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    calls,
    close: () =>
      new Promise<void>((resolve, reject) => {
        options.onClose?.();
        server.close((err) => (err ? reject(err) : resolve()));
        // SDK clients keep connections alive; do not wait for them to time out.
        server.closeAllConnections();
      }),
  };
}

/** Credentials and region for SDK clients that only ever talk to local endpoints. */
export const LOCAL_AWS_ENV: Readonly<Record<string, string>> = {
  AWS_ACCESS_KEY_ID: 'test',
  AWS_SECRET_ACCESS_KEY: 'test',
  AWS_REGION: 'us-east-1',
  AWS_EC2_METADATA_DISABLED: 'true',
};

/** Sets `vars` in `process.env`; the function it returns puts the previous values back. */
export function setEnv(vars: Readonly<Record<string, string>>): () => void {
  const saved = Object.entries(vars).map(([name]) => [name, process.env[name]] as const);
  Object.assign(process.env, vars);
  return () => {
    for (const [name, value] of saved) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  };
}
