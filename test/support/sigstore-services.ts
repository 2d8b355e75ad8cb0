/**
 * A Rekor (v1 API) and an RFC 3161 timestamp authority on 127.0.0.1, made of @sigstore/mock's own
 * log and TSA mounted in a node:http server (no nock: the code under test does real HTTP). What
 * the mock leaves out, done as the real services do: Rekor answers 409 with a Location for an
 * entry it already holds and canonicalizes `dsse` entries (envelope hash, payload hash,
 * signatures with verifiers); the TSA takes a DER `application/timestamp-query`. Tests turn
 * `mode` to make the log misbehave, and read `requests` to see who was asked what.
 */
import { createHash, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ASN1Obj } from '@sigstore/core';
import { initializeTLog, initializeTSA, rekorHandler } from '@sigstore/mock';

/** How the log answers the next entries. */
export type RekorMode =
  /** As Rekor does. */
  | 'ok'
  /** 503 for every request. */
  | 'down'
  /** Logs (and answers) an entry other than the one sent. */
  | 'other-body'
  /** A 2 MB answer. */
  | 'oversized'
  /** 307 to `redirectTo`. */
  | 'redirect'
  /** 409 with a Location on `redirectTo`, as if the entry existed elsewhere. */
  | 'conflict-elsewhere';

/** One request a service received. */
export interface ServiceRequest {
  readonly method: string;
  readonly path: string;
  readonly host: string | undefined;
}

/** The running services and what verifies their work. */
export interface SigstoreServices {
  /** `http://127.0.0.1:<port>`: the Rekor base URL. */
  readonly url: string;
  /** The TSA's endpoint URL. */
  readonly tsaUrl: string;
  readonly requests: ServiceRequest[];
  mode: RekorMode;
  /** Where `redirect` and `conflict-elsewhere` send the client. */
  redirectTo: string;
  /** The log's key (SPKI DER in the trusted root; SETs verify with it). */
  readonly rekorKey: KeyObject;
  /** sha256 of the log's SPKI: the log id. */
  readonly logId: Buffer;
  /** The TSA's root and signing certificates (DER). */
  readonly tsaCertificates: readonly Buffer[];
  /** A `trusted_root.json` object listing this log and this TSA. */
  trustedRoot(): Record<string, unknown>;
  close(): Promise<void>;
}

const TSA_POLICY = '1.3.6.1.4.1.57264.2';

/** Starts the services on 127.0.0.1 (an OS-chosen port). */
export async function startSigstoreServices(): Promise<SigstoreServices> {
  const rekorKeys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const tsaKeys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;
  const tlog = await initializeTLog(url, rekorKeys);
  const rekor = rekorHandler(tlog);
  // Whole seconds: the mock writes a Date's milliseconds into genTime, and some of those fractions
  // do not parse in @sigstore/core ("invalid time"), in Signet's checks as in any verifier's.
  const tsa = await initializeTSA(tsaKeys, new Date(Math.floor(Date.now() / 1000) * 1000));
  /** Entries logged, by the sha256 of the proposed entry: what a 409 finds. */
  const logged = new Map<string, { uuid: string; answer: string }>();
  const entries = new Map<string, string>();
  const spki = rekorKeys.publicKey.export({ format: 'der', type: 'spki' });

  const services: SigstoreServices = {
    url,
    tsaUrl: `${url}/api/v1/timestamp`,
    requests: [],
    mode: 'ok',
    redirectTo: 'http://localhost:1',
    rekorKey: rekorKeys.publicKey,
    logId: createHash('sha256').update(spki).digest(),
    tsaCertificates: [bytes(tsa.rootCertificate), bytes(tsa.intCertificate)],
    trustedRoot: () => trustedRoot(url, spki, services.logId, services.tsaCertificates),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };

  const answer = (
    res: ServerResponse,
    status: number,
    body: string | Buffer,
    type = 'application/json',
  ): void => {
    res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
    res.end(body);
  };

  const handleRekor = async (req: IncomingMessage, body: Buffer, res: ServerResponse): Promise<void> => {
    const path = req.url ?? '/';
    switch (services.mode) {
      case 'down':
        return answer(res, 503, '{"code":503,"message":"down for maintenance"}');
      case 'oversized':
        return answer(res, 201, Buffer.alloc(2 * 1024 * 1024, 0x20));
      case 'redirect':
        res.writeHead(307, { location: `${services.redirectTo}${path}` });
        return void res.end();
      case 'conflict-elsewhere':
        res.writeHead(409, { location: `${services.redirectTo}/api/v1/log/entries/${'0'.repeat(64)}` });
        return void res.end('{"code":409,"message":"an equivalent entry already exists"}');
      case 'ok':
      case 'other-body':
        break;
    }
    if (req.method === 'GET') {
      const found = entries.get(path.slice('/api/v1/log/entries/'.length));
      return found === undefined ? answer(res, 404, '{"code":404}') : answer(res, 200, found);
    }
    const key = createHash('sha256').update(body).digest('hex');
    const existing = logged.get(key);
    if (existing !== undefined) {
      res.writeHead(409, {
        location: `/api/v1/log/entries/${existing.uuid}`,
        'content-type': 'application/json',
      });
      return void res.end(
        '{"code":409,"message":"an equivalent entry already exists in the transparency log"}',
      );
    }
    const proposed = JSON.parse(body.toString('utf8')) as { kind: string };
    const stored =
      services.mode === 'other-body'
        ? { ...proposed, spec: { data: { hash: { algorithm: 'sha256', value: 'ab'.repeat(32) } } } }
        : proposed.kind === 'dsse'
          ? canonicalDsse(proposed as unknown as DsseProposal)
          : undefined;
    if (stored === undefined) {
      const result = await rekor.fn(body.toString('utf8'));
      if (result.statusCode === 201) remember(key, String(result.response));
      return answer(res, result.statusCode, String(result.response));
    }
    const entry = JSON.stringify(await tlog.log(stored));
    remember(key, entry);
    return answer(res, 201, entry);
  };

  const remember = (key: string, answerJson: string): void => {
    const uuid = Object.keys(JSON.parse(answerJson) as object)[0] as string;
    logged.set(key, { uuid, answer: answerJson });
    entries.set(uuid, answerJson);
  };

  const handleTsa = async (req: IncomingMessage, body: Buffer, res: ServerResponse): Promise<void> => {
    if (req.headers['content-type'] !== 'application/timestamp-query') return answer(res, 415, 'not a query');
    const request = ASN1Obj.parseBuffer(Buffer.from(body));
    const imprint = request.subs[1] as ASN1Obj;
    const nonce = request.subs.find((sub, i) => i > 1 && sub.tag.isInteger());
    const certReq = request.subs.find((sub) => sub.tag.isBoolean())?.toBoolean() ?? false;
    const token = await tsa.timestamp({
      artifactHash: Buffer.from((imprint.subs[1] as ASN1Obj).value),
      hashAlgorithmOID: ((imprint.subs[0] as ASN1Obj).subs[0] as ASN1Obj).toOID(),
      nonce: nonce === undefined ? 0 : Number(nonce.toInteger()),
      policyOID: TSA_POLICY,
      certReq,
    });
    return answer(
      res,
      200,
      Buffer.from(token.buffer, token.byteOffset, token.byteLength),
      'application/timestamp-reply',
    );
  };

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const path = req.url ?? '/';
      services.requests.push({ method: req.method ?? '', path, host: req.headers.host });
      const body = Buffer.concat(chunks);
      const handled = path.startsWith('/api/v1/log/entries')
        ? handleRekor(req, body, res)
        : path === '/api/v1/timestamp' && req.method === 'POST'
          ? handleTsa(req, body, res)
          : Promise.resolve(answer(res, 404, '{"code":404}'));
      handled.catch((err: unknown) => {
        if (!res.headersSent) answer(res, 500, JSON.stringify({ message: String(err) }));
      });
    });
  });
  return services;
}

interface DsseProposal {
  readonly apiVersion: string;
  readonly kind: 'dsse';
  readonly spec: {
    readonly proposedContent: { readonly envelope: string; readonly verifiers: readonly string[] };
  };
}

/** What Rekor stores for a `dsse` 0.0.1 proposal: hashes of envelope and payload, signatures with their verifier. */
function canonicalDsse(proposed: DsseProposal): object {
  const { envelope, verifiers } = proposed.spec.proposedContent;
  const parsed = JSON.parse(envelope) as { payload: string; signatures: { sig: string }[] };
  const sha256 = (bytes: Buffer | string): string => createHash('sha256').update(bytes).digest('hex');
  return {
    apiVersion: proposed.apiVersion,
    kind: proposed.kind,
    spec: {
      envelopeHash: { algorithm: 'sha256', value: sha256(envelope) },
      payloadHash: { algorithm: 'sha256', value: sha256(Buffer.from(parsed.payload, 'base64')) },
      signatures: parsed.signatures.map((s) => ({ signature: s.sig, verifier: verifiers[0] })),
    },
  };
}

function trustedRoot(
  url: string,
  spki: Buffer,
  logId: Buffer,
  tsaCertificates: readonly Buffer[],
): Record<string, unknown> {
  const validFor = { start: '2000-01-01T00:00:00Z' };
  return {
    mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
    tlogs: [
      {
        baseUrl: url,
        hashAlgorithm: 'SHA2_256',
        publicKey: { rawBytes: spki.toString('base64'), keyDetails: 'PKIX_ECDSA_P256_SHA_256', validFor },
        logId: { keyId: logId.toString('base64') },
      },
    ],
    certificateAuthorities: [],
    ctlogs: [],
    timestampAuthorities: [
      {
        subject: { organization: 'sigstore.mock', commonName: 'tsa' },
        uri: url,
        // Leaf (the signing certificate) first, then the root.
        certChain: {
          certificates: [...tsaCertificates].reverse().map((c) => ({ rawBytes: c.toString('base64') })),
        },
        validFor,
      },
    ],
  };
}

const bytes = (view: ArrayBufferView): Buffer => Buffer.from(view.buffer, view.byteOffset, view.byteLength);
