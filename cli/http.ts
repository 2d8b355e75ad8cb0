import type { IncomingMessage, ServerResponse } from 'node:http';
import { InputError, httpStatusOf, describeError, type SignetError } from '../lib/core/errors';

/** Reads a request body up to `limit` bytes; a larger body is refused before it is buffered. */
export async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (Number.isFinite(declared) && declared > limit) {
    req.resume();
    throw new InputError('BODY_TOO_LARGE', 'body', `is ${declared} bytes; the limit is ${limit}`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) {
      req.resume();
      throw new InputError('BODY_TOO_LARGE', 'body', `exceeds the limit of ${limit} bytes`);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/** Parses a JSON body, naming the body in the error. */
export function parseJson(body: Buffer, field = 'body'): unknown {
  if (body.length === 0) throw new InputError('REQUEST_INVALID', field, 'is empty; expected JSON');
  try {
    return JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw new InputError('REQUEST_INVALID', field, `is not valid JSON (${describeError(err)})`);
  }
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const bytes = Buffer.from(JSON.stringify(body));
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': bytes.length });
  res.end(bytes);
}

/** The JSON error body every Signet endpoint answers: code, field (for input errors), message. */
export function errorBody(err: unknown): { error: { code: string; field?: string; message: string } } {
  const code = (err as SignetError).code ?? 'INTERNAL';
  return {
    error: {
      code,
      ...(err instanceof InputError ? { field: err.field } : {}),
      message: describeError(err),
    },
  };
}

export function sendError(res: ServerResponse, err: unknown): void {
  sendJson(res, httpStatusOf(err), errorBody(err));
}
