/** Request bodies: read only once the caller is authenticated, bounded while they stream, parsed as JSON. */
import { InputError, describeError, type InputErrorCode } from '../core/errors';

/**
 * A request body as an edge has it: a stream still on the socket (the local service), or bytes
 * already received (a Lambda Function URL event).
 */
export type BodySource =
  | {
      readonly $case: 'stream';
      readonly stream: AsyncIterable<Uint8Array>;
      /** The Content-Length header, when the request has one. */
      readonly declaredLength: number | undefined;
    }
  | { readonly $case: 'bytes'; readonly bytes: Buffer };

/**
 * Reads a body up to `limit` bytes. A declared length over the limit is refused before anything
 * is read, and a streamed body is cut the moment it passes the limit.
 */
export async function readBody(source: BodySource, limit: number): Promise<Buffer> {
  switch (source.$case) {
    case 'bytes':
      if (source.bytes.length > limit)
        throw tooLarge(`is ${source.bytes.length} bytes; the limit is ${limit}`);
      return source.bytes;
    case 'stream': {
      if (source.declaredLength !== undefined && source.declaredLength > limit) {
        throw tooLarge(`is ${source.declaredLength} bytes; the limit is ${limit}`);
      }
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of source.stream) {
        size += chunk.byteLength;
        if (size > limit) throw tooLarge(`exceeds the limit of ${limit} bytes`);
        chunks.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
      }
      return Buffer.concat(chunks, size);
    }
  }
}

const tooLarge = (message: string): InputError => new InputError('BODY_TOO_LARGE', 'body', message);

/** Parses a JSON body; `code` says what the body was meant to be. */
export function parseJsonBody(
  bytes: Buffer,
  code: Extract<InputErrorCode, 'ADMISSION_REVIEW_INVALID' | 'REQUEST_INVALID' | 'EVENT_INVALID'>,
): unknown {
  if (bytes.length === 0) throw new InputError(code, 'body', 'is empty; expected JSON');
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new InputError(code, 'body', `is not valid JSON (${describeError(err)})`);
  }
}

/** A Content-Length header as a number, or undefined when absent or malformed. */
export function declaredLength(header: string | undefined): number | undefined {
  if (header === undefined || !/^\d{1,15}$/.test(header.trim())) return undefined;
  return Number(header.trim());
}
