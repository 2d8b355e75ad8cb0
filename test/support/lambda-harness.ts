/**
 * What the Lambda handler tests share: a `Context` as the Lambda runtime passes it, the process
 * environment the AWS SDK and Powertools read (set for a test file, then restored), SDK clients
 * for the local AWS endpoints, and everything the handlers write (Powertools JSON logs and EMF
 * metrics on stdout, warnings on stderr) captured and parsed. Handlers are built with their
 * factories (`makeSignHandler(signDependencies(env, clients))`), never from `process.env`.
 */
import { randomUUID } from 'node:crypto';
import type { Context } from 'aws-lambda';
import { LOCAL_AWS_ENV, setEnv } from './aws-endpoint';

/** The account the local endpoints and the fixtures use. */
export const TEST_ACCOUNT = '111122223333';
export const TEST_REGION = 'us-east-1';

/** A Lambda context as the runtime passes it to one invocation. */
export function lambdaContext(
  functionName: string,
  options: { readonly memoryLimitInMB?: number; readonly remainingMs?: number } = {},
): Context {
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:${TEST_REGION}:${TEST_ACCOUNT}:function:${functionName}`,
    memoryLimitInMB: String(options.memoryLimitInMB ?? 512),
    awsRequestId: randomUUID(),
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: '2026/01/01/[$LATEST]0123456789abcdef',
    getRemainingTimeInMillis: () => options.remainingMs ?? 60_000,
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

/**
 * Sets the variables a Lambda execution environment has for this test file (beforeAll) and puts
 * the previous values back (afterAll): the local region and credentials (the KMS clients `lib/`
 * creates read them), Powertools' log level, and `vars`.
 */
export function useLambdaEnv(vars: Readonly<Record<string, string>> = {}): void {
  let restore: (() => void) | undefined;
  beforeAll(() => {
    restore = setEnv({ ...LOCAL_AWS_ENV, POWERTOOLS_LOG_LEVEL: 'INFO', ...vars });
  });
  afterAll(() => restore?.());
}

/** SDK client configuration for one local endpoint: its URL, the test region, static credentials. */
export function localClientConfig(endpoint: string): {
  endpoint: string;
  region: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
} {
  return {
    endpoint,
    region: TEST_REGION,
    credentials: { accessKeyId: 'AKIDSIGNETTEST', secretAccessKey: 'signet-test-secret' },
  };
}

/** One parsed JSON line a handler wrote (a Powertools log entry or an EMF metrics document). */
export type JsonLine = Record<string, unknown>;

/** What one invocation returned or threw, and the JSON lines it wrote. */
export interface Invocation<T> {
  readonly result: T | undefined;
  readonly error: unknown;
  readonly lines: JsonLine[];
}

/**
 * Everything written to stdout and stderr while a test file runs (Powertools writes through its
 * own `Console` on those streams, so the streams are where to listen). Keeps jest's output clean.
 */
export class CapturedOutput {
  private readonly chunks: string[] = [];

  /** Everything written so far, as text. */
  get text(): string {
    return this.chunks.join('');
  }

  /** A position in the output; `jsonLines(mark)` reads what was written after it. */
  mark(): number {
    return this.chunks.length;
  }

  /** The JSON lines written since `from`. */
  jsonLines(from = 0): JsonLine[] {
    return this.chunks
      .slice(from)
      .join('')
      .split('\n')
      .filter((line) => line.startsWith('{"'))
      .map((line) => JSON.parse(line) as JsonLine);
  }

  /** Runs one invocation and returns its outcome with the lines it wrote; never throws. */
  async invoke<T>(run: () => Promise<T>): Promise<Invocation<T>> {
    const from = this.mark();
    let result: T | undefined;
    let error: unknown;
    try {
      result = await run();
    } catch (err) {
      error = err;
    }
    return { result, error, lines: this.jsonLines(from) };
  }

  /** @internal */
  write(chunk: string | Uint8Array): void {
    this.chunks.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
  }
}

/** Captures stdout and stderr for this test file (beforeAll), releases them afterwards. */
export function captureOutput(): CapturedOutput {
  const output = new CapturedOutput();
  let spies: jest.SpyInstance[] = [];
  beforeAll(() => {
    spies = [process.stdout, process.stderr].map((stream) =>
      jest.spyOn(stream, 'write').mockImplementation((chunk: string | Uint8Array) => {
        output.write(chunk);
        return true;
      }),
    );
  });
  afterAll(() => {
    for (const spy of spies) spy.mockRestore();
  });
  return output;
}

/** The sum of an EMF metric over some lines. */
export function metricSum(lines: readonly JsonLine[], name: string): number {
  return lines
    .filter((line) => line['_aws'] !== undefined && typeof line[name] === 'number')
    .reduce((sum, line) => sum + (line[name] as number), 0);
}

/** The log entries with this message. */
export function logEntries(lines: readonly JsonLine[], message: string): JsonLine[] {
  return lines.filter((line) => line['message'] === message);
}
