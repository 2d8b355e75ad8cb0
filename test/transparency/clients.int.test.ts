/**
 * The Rekor and RFC 3161 clients against a hostile server on 127.0.0.1: every way an answer can
 * be wrong maps to its code (an outage is retried, a refusal or a wrong answer is not), answers
 * are bounded while they stream, and nothing is followed off the configured origin.
 */
import { createHash, generateKeyPairSync } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { SigstoreServiceError } from '../../lib/core/errors';
import { RekorClient, TimestampClient } from '../../lib/transparency';
import { startHostileServer, streamEndlessly, type HostileServer } from '../support/hostile-server';
import { startSigstoreServices, type SigstoreServices } from '../support/sigstore-services';

jest.setTimeout(20_000);

const OPTIONS = { timeoutMs: 500, maxResponseBytes: 16 * 1024, userAgent: 'signet-test' };
const key = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const payload = Buffer.from('{"critical":{}}');
const signature = Buffer.from('a signature');
const entryInput = {
  algorithm: 'sha256' as const,
  digest: createHash('sha256').update(payload).digest(),
  signature,
  publicKey: key.publicKey,
};

let handler: (req: IncomingMessage, res: ServerResponse) => void = (_, res) => res.end();
let server: HostileServer;
let services: SigstoreServices;
beforeAll(async () => {
  [server, services] = await Promise.all([
    startHostileServer((req, res) => handler(req, res)),
    startSigstoreServices(),
  ]);
});
afterAll(() => Promise.all([server?.close(), services?.close()]));

const json = (status: number, body: unknown, headers: Record<string, string> = {}) => {
  return (_: IncomingMessage, res: ServerResponse): void => {
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(typeof body === 'string' ? body : JSON.stringify(body));
  };
};

/** A well-formed entry for `entryInput`, with `change` applied. */
function entry(change: (e: Record<string, unknown>) => void = () => undefined): Record<string, unknown> {
  const body = {
    apiVersion: '0.0.1',
    kind: 'hashedrekord',
    spec: {
      data: { hash: { algorithm: 'sha256', value: entryInput.digest.toString('hex') } },
      signature: {
        content: signature.toString('base64'),
        publicKey: {
          content: Buffer.from(key.publicKey.export({ type: 'spki', format: 'pem' })).toString('base64'),
        },
      },
    },
  };
  const e: Record<string, unknown> = {
    body: Buffer.from(JSON.stringify(body)).toString('base64'),
    integratedTime: 1_700_000_000,
    logID: 'ab'.repeat(32),
    logIndex: 7,
    verification: { signedEntryTimestamp: Buffer.from('set').toString('base64') },
  };
  change(e);
  return { ['cd'.repeat(32)]: e };
}

const rekor = (): RekorClient => new RekorClient(server.url, OPTIONS);

describe('the Rekor client', () => {
  it('takes a well-formed entry for what it sent', async () => {
    handler = json(201, entry());
    await expect(rekor().addHashedRekord(entryInput)).resolves.toMatchObject({
      uuid: 'cd'.repeat(32),
      kind: 'hashedrekord',
      logIndex: 7,
      inclusionProof: undefined,
    });
  });

  it.each<[string, (req: IncomingMessage, res: ServerResponse) => void]>([
    ['503', json(503, { message: 'down' })],
    ['429', json(429, { message: 'slow down' })],
    ['a connection reset', (req) => req.socket.destroy()],
    ['no answer within the timeout', () => undefined],
  ])('is TLOG_UNAVAILABLE on %s', async (_, answer) => {
    handler = answer;
    await expect(rekor().addHashedRekord(entryInput)).toThrowWithCode(
      SigstoreServiceError,
      'TLOG_UNAVAILABLE',
    );
  });

  it('is TLOG_REFUSED on a 400, with the log’s message', async () => {
    handler = json(400, { code: 400, message: 'signature does not verify' });
    const refused = rekor().addHashedRekord(entryInput);
    await expect(refused).toThrowWithCode(SigstoreServiceError, 'TLOG_REFUSED');
    await expect(refused).rejects.toThrow(/signature does not verify/);
  });

  it.each<[string, Record<string, unknown> | string]>([
    ['not JSON', 'not json'],
    ['two entries', { ...entry(), ['ef'.repeat(32)]: {} }],
    ['no SET', entry((e) => (e.verification = {}))],
    ['a bad log id', entry((e) => (e.logID = 'xyz'))],
    ['no integrated time', entry((e) => delete e.integratedTime)],
    ['a body that is not JSON', entry((e) => (e.body = Buffer.from('nope').toString('base64')))],
    [
      'a malformed inclusion proof',
      entry((e) => (e.verification = { signedEntryTimestamp: 'c2V0', inclusionProof: { logIndex: 1 } })),
    ],
    [
      'another key',
      entry((e) => {
        const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({
          type: 'spki',
          format: 'pem',
        });
        const body = JSON.parse(Buffer.from(e.body as string, 'base64').toString()) as {
          spec: { signature: { publicKey: { content: string } } };
        };
        body.spec.signature.publicKey.content = Buffer.from(other).toString('base64');
        e.body = Buffer.from(JSON.stringify(body)).toString('base64');
      }),
    ],
    [
      'another kind',
      entry((e) => {
        e.body = Buffer.from(JSON.stringify({ apiVersion: '0.0.1', kind: 'rekord', spec: {} })).toString(
          'base64',
        );
      }),
    ],
  ])('is TLOG_ANSWER_INVALID on %s', async (_, body) => {
    handler = json(201, body);
    await expect(rekor().addHashedRekord(entryInput)).toThrowWithCode(
      SigstoreServiceError,
      'TLOG_ANSWER_INVALID',
    );
  });

  it('cuts an endless answer off at the size limit', async () => {
    let written: Promise<number> | undefined;
    handler = (_, res) => {
      res.writeHead(201, { 'content-type': 'application/json' });
      written = streamEndlessly(res, Buffer.alloc(4096, 0x20));
    };
    await expect(rekor().addHashedRekord(entryInput)).toThrowWithCode(
      SigstoreServiceError,
      'TLOG_ANSWER_INVALID',
    );
    expect(await written).toBeLessThan(1024 * 1024);
  });

  it('refuses a declared length over the limit before reading it', async () => {
    handler = (_, res) => {
      res.writeHead(201, { 'content-length': String(10 * 1024 * 1024) });
      res.write('{');
    };
    await expect(rekor().addHashedRekord(entryInput)).toThrowWithCode(
      SigstoreServiceError,
      'TLOG_ANSWER_INVALID',
    );
  });

  it('is TLOG_ANSWER_INVALID on a 409 without a Location', async () => {
    handler = json(409, { message: 'exists' });
    await expect(rekor().addHashedRekord(entryInput)).toThrowWithCode(
      SigstoreServiceError,
      'TLOG_ANSWER_INVALID',
    );
  });

  it('posts under the base URL’s path', async () => {
    handler = json(201, entry());
    const before = server.requests.length;
    await new RekorClient(`${server.url}/rekor/`, OPTIONS).addHashedRekord(entryInput);
    expect(server.requests.slice(before).map((r) => `${r.method} ${r.path}`)).toEqual([
      'POST /rekor/api/v1/log/entries',
    ]);
  });

  it('logs a dsse entry at the mock Rekor, checked against what the real one stores', async () => {
    const statement = Buffer.from('{"_type":"https://in-toto.io/Statement/v1"}');
    const envelopeJson = JSON.stringify({
      payload: statement.toString('base64'),
      payloadType: 'application/vnd.in-toto+json',
      signatures: [{ sig: signature.toString('base64'), keyid: '' }],
    });
    const logged = await new RekorClient(services.url, OPTIONS).addDsse({
      envelopeJson,
      payload: statement,
      signature,
      publicKey: key.publicKey,
    });
    expect(logged.kind).toBe('dsse');
    expect(logged.inclusionProof?.treeSize).toBe(1);
    await expect(
      new RekorClient(services.url, OPTIONS).addDsse({
        envelopeJson,
        payload: Buffer.from('another statement'),
        signature,
        publicKey: key.publicKey,
      }),
    ).toThrowWithCode(SigstoreServiceError, 'TLOG_ANSWER_INVALID');
  });
});

describe('the timestamp client', () => {
  const tsa = (url = services.tsaUrl): TimestampClient => new TimestampClient(url, OPTIONS);

  it('returns a token over the signature', async () => {
    const token = await tsa().timestamp(signature);
    expect(token.length).toBeGreaterThan(100);
  });

  it.each<[string, (req: IncomingMessage, res: ServerResponse) => void, string]>([
    ['a 502', json(502, 'bad gateway'), 'TSA_UNAVAILABLE'],
    ['a 401', json(401, 'no'), 'TSA_REFUSED'],
    ['a redirect', json(302, '', { location: 'https://tsa.example.com/' }), 'TSA_ANSWER_INVALID'],
    ['garbage', json(200, 'not DER'), 'TSA_ANSWER_INVALID'],
  ])('maps %s to its code', async (_, answer, code) => {
    handler = answer;
    await expect(tsa(`${server.url}/tsr`).timestamp(signature)).toThrowWithCode(SigstoreServiceError, code);
  });

  it('refuses a token for another signature (a replayed answer)', async () => {
    const other = await tsa().timestamp(Buffer.from('another signature'));
    handler = (_, res) => {
      res.writeHead(200, { 'content-type': 'application/timestamp-reply' });
      res.end(other);
    };
    await expect(tsa(`${server.url}/tsr`).timestamp(signature)).toThrowWithCode(
      SigstoreServiceError,
      'TSA_ANSWER_INVALID',
    );
  });

  it('refuses a rejection (PKIStatus 2) as TSA_REFUSED', async () => {
    // TimeStampResp { status PKIStatusInfo { rejection } }
    const rejection = Buffer.from([0x30, 0x05, 0x30, 0x03, 0x02, 0x01, 0x02]);
    handler = (_, res) => {
      res.writeHead(200, { 'content-type': 'application/timestamp-reply' });
      res.end(rejection);
    };
    await expect(tsa(`${server.url}/tsr`).timestamp(signature)).toThrowWithCode(
      SigstoreServiceError,
      'TSA_REFUSED',
    );
  });
});
