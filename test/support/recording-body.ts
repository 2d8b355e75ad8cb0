/**
 * Request bodies for unit tests of Signet's HTTP surface (`lib/http`): `BodySource` streams that
 * record whether anyone started reading them and how many bytes were pulled, so a test can prove
 * that a refused request's body was never touched.
 *
 *   const body = recordingBody('{"events": []}');
 *   await handleRequest({ method: 'POST', path, headers, body: body.source }, deps);
 *   expect(body.pulled).toBe(0);
 *
 *   const endless = endlessBody(64 * 1024);    // a client that never stops sending
 *   const held = heldBody('{}');               // a body that arrives when `release()` is called
 */
import type { BodySource } from '../../lib/http/body';

/** A body whose reads are recorded. */
export interface RecordingBody {
  readonly source: BodySource;
  /** True once something asked the stream for its first chunk. */
  readonly touched: boolean;
  /** Bytes handed out so far. */
  readonly pulled: number;
  /** True once the stream ended or its reader gave up on it (a `return()` from `for await`). */
  readonly finished: boolean;
}

interface Recorder {
  touched: boolean;
  pulled: number;
  finished: boolean;
}

function recording(
  chunks: (recorder: Recorder) => AsyncGenerator<Uint8Array>,
  declaredLength: number | undefined,
): RecordingBody {
  const recorder: Recorder = { touched: false, pulled: 0, finished: false };
  const stream: AsyncIterable<Uint8Array> = {
    [Symbol.asyncIterator]: () => chunks(recorder),
  };
  return {
    source: { $case: 'stream', stream, declaredLength },
    get touched() {
      return recorder.touched;
    },
    get pulled() {
      return recorder.pulled;
    },
    get finished() {
      return recorder.finished;
    },
  };
}

/**
 * `content` as a stream of `chunkSize` pieces. `declaredLength` is the Content-Length the request
 * claims: the real length by default, `null` for none (a chunked request), or any lie.
 */
export function recordingBody(
  content: string | Buffer,
  options: { declaredLength?: number | null; chunkSize?: number } = {},
): RecordingBody {
  const bytes = typeof content === 'string' ? Buffer.from(content, 'utf8') : content;
  const chunkSize = options.chunkSize ?? 16 * 1024;
  const declared =
    options.declaredLength === undefined ? bytes.length : (options.declaredLength ?? undefined);
  return recording(async function* (recorder) {
    recorder.touched = true;
    try {
      for (let offset = 0; offset < bytes.length; offset += chunkSize) {
        const chunk = bytes.subarray(offset, offset + chunkSize);
        recorder.pulled += chunk.length;
        yield chunk;
      }
    } finally {
      recorder.finished = true;
    }
  }, declared);
}

/** A body that never ends (no Content-Length): `chunkSize` bytes of `a` at a time, for as long as it is read. */
export function endlessBody(chunkSize: number): RecordingBody {
  const chunk = Buffer.alloc(chunkSize, 0x61);
  return recording(async function* (recorder) {
    recorder.touched = true;
    try {
      while (true) {
        recorder.pulled += chunk.length;
        yield chunk;
      }
    } finally {
      recorder.finished = true;
    }
  }, undefined);
}

/** A body whose bytes arrive only when `release()` is called: a request that holds its slot. */
export interface HeldBody extends RecordingBody {
  release(): void;
}

export function heldBody(content: string): HeldBody {
  let release!: () => void;
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  const bytes = Buffer.from(content, 'utf8');
  const body = recording(async function* (recorder) {
    recorder.touched = true;
    try {
      await released;
      recorder.pulled += bytes.length;
      yield bytes;
    } finally {
      recorder.finished = true;
    }
  }, bytes.length);
  return {
    source: body.source,
    get touched() {
      return body.touched;
    },
    get pulled() {
      return body.pulled;
    },
    get finished() {
      return body.finished;
    },
    release,
  };
}
