/**
 * A client that behaves like a careless or hostile one: raw TCP, an HTTP/1.1 request line and
 * headers written by hand, then a body streamed from one shared buffer (so that a thousand such
 * clients cost the test process little), declared with Content-Length or sent chunked, for as
 * long as the server lets it. Whatever the server answers is read as it arrives; the client stops
 * sending at the first byte of an answer.
 *
 *   const answer = await rawPost(port, '/events/distribution', { bodyBytes: 3 * MiB, chunked: true });
 *   answer.status  // 401, or undefined when the connection died before any answer
 */
import { connect } from 'node:net';

/** What came back. */
export interface RawAnswer {
  /** The status code of the answer's status line; undefined when none arrived. */
  readonly status: number | undefined;
  /** The answer's header block, lowercased (for `connection: close`, `retry-after`). */
  readonly head: string;
  /** Body bytes the client had handed to the socket when it stopped. */
  readonly sent: number;
  /** The socket error, if one ended the exchange (EPIPE or ECONNRESET after an early answer is normal). */
  readonly error: string | undefined;
}

const CHUNK = Buffer.alloc(64 * 1024, 0x61);

/** POSTs `bodyBytes` of `a` to `127.0.0.1:port` + `path`. */
export function rawPost(
  port: number,
  path: string,
  options: { bodyBytes: number; chunked: boolean; headers?: Readonly<Record<string, string>> },
): Promise<RawAnswer> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let received = Buffer.alloc(0);
    let sent = 0;
    let error: string | undefined;
    let answered = false;
    socket.on('data', (data: Buffer) => {
      answered = true;
      received = Buffer.concat([received, data]);
      // Everything needed is in the head; the rest may stay unread.
      if (received.includes('\r\n\r\n')) socket.end();
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      error = err.code ?? err.message;
    });
    socket.on('close', () => {
      const text = received.toString('latin1');
      const head = text.split('\r\n\r\n', 1)[0] ?? '';
      const match = /^HTTP\/1\.[01] (\d{3})/.exec(head);
      resolve({ status: match ? Number(match[1]) : undefined, head: head.toLowerCase(), sent, error });
    });
    const extra = Object.entries(options.headers ?? {})
      .map(([name, value]) => `${name}: ${value}\r\n`)
      .join('');
    const framing = options.chunked ? 'Transfer-Encoding: chunked' : `Content-Length: ${options.bodyBytes}`;
    socket.write(`POST ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n${extra}${framing}\r\n\r\n`);
    const pump = (): void => {
      while (!answered && !socket.destroyed && sent < options.bodyBytes) {
        const piece = CHUNK.subarray(0, Math.min(CHUNK.length, options.bodyBytes - sent));
        sent += piece.length;
        let writable: boolean;
        if (options.chunked) {
          socket.write(`${piece.length.toString(16)}\r\n`);
          socket.write(piece);
          writable = socket.write('\r\n');
        } else {
          writable = socket.write(piece);
        }
        if (!writable) {
          socket.once('drain', pump);
          return;
        }
      }
      if (!answered && !socket.destroyed && options.chunked) socket.write('0\r\n\r\n');
    };
    pump();
  });
}
