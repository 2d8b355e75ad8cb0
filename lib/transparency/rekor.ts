/**
 * A small Rekor (v1 API) client for signing: `POST /api/v1/log/entries` with a `hashedrekord`
 * 0.0.1 entry (a cosign `.sig` payload) or a `dsse` 0.0.1 entry (a Sigstore bundle's envelope).
 * An entry that already exists (409, the same signature logged before: RSA PKCS#1 v1.5 signs
 * deterministically) is read back from the Location the log names, on the log's own origin.
 *
 * What is checked in the answer: it is one entry, within the size limit, from the configured
 * origin; its body is the entry Signet sent (kind and version, digest, signature, and the
 * witness's public key compared as SPKI bytes; for `dsse`, the payload hash, the one signature and
 * its verifier); integrated time, log index and log id are well-formed; the SET is present and
 * base64; an inclusion proof, when there is one, is well-formed. The SET's signature is not checked
 * here (Signet holds no log key for signing): a verifier checks it against its trusted root, and
 * Signet's own verifier does (lib/sigstore).
 */
import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import { isObject } from '../core/json';
import type { InclusionProof, LogEntry } from '../cosign/log-evidence';
import { DEFAULT_SERVICE_HTTP_OPTIONS, ServiceHttp, type ServiceHttpOptions } from './http';

const ENTRIES_PATH = '/api/v1/log/entries';
const HEX = /^[0-9a-f]+$/;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
const ENTRY_UUID = /^[0-9a-f]{64}(?:[0-9a-f]{16})?$/;

/** A cosign `.sig` signature to log: the payload's digest, the signature, the witness's key. */
export interface HashedRekordInput {
  /** The hash the signature was made over: sha256, or sha384 for ECDSA P-384 rules. */
  readonly algorithm: 'sha256' | 'sha384';
  /** The signed payload's digest. */
  readonly digest: Buffer;
  readonly signature: Buffer;
  readonly publicKey: KeyObject;
}

/** A DSSE envelope to log: the envelope JSON as the bundle holds it, its payload and one signature. */
export interface DsseInput {
  readonly envelopeJson: string;
  readonly payload: Buffer;
  readonly signature: Buffer;
  readonly publicKey: KeyObject;
}

/** Adds entries to one Rekor log. */
export class RekorClient {
  private readonly http: ServiceHttp;
  private readonly entries: URL;

  constructor(baseUrl: string, options: ServiceHttpOptions = DEFAULT_SERVICE_HTTP_OPTIONS) {
    const base = new URL(baseUrl);
    this.http = new ServiceHttp(
      base,
      { unavailable: 'TLOG_UNAVAILABLE', refused: 'TLOG_REFUSED', invalid: 'TLOG_ANSWER_INVALID' },
      options,
    );
    this.entries = new URL(`${base.pathname.replace(/\/+$/, '')}${ENTRIES_PATH}`, base);
  }

  /** `scheme://host[:port]` of the log. */
  get origin(): string {
    return this.http.origin;
  }

  /** Logs a `hashedrekord` 0.0.1 entry and returns it, checked. */
  addHashedRekord(input: HashedRekordInput): Promise<LogEntry> {
    const spki = spkiOf(input.publicKey);
    const proposed = {
      apiVersion: '0.0.1',
      kind: 'hashedrekord',
      spec: {
        data: { hash: { algorithm: input.algorithm, value: input.digest.toString('hex') } },
        signature: {
          content: input.signature.toString('base64'),
          publicKey: { content: Buffer.from(pemOf(input.publicKey)).toString('base64') },
        },
      },
    };
    return this.add(proposed, (body) => {
      const spec = field(body, 'spec');
      const hash = field(field(spec, 'data'), 'hash');
      const signature = field(spec, 'signature');
      if (
        field(hash, 'algorithm') !== input.algorithm ||
        field(hash, 'value') !== input.digest.toString('hex')
      )
        return 'it logs another digest';
      if (!sameBase64(field(signature, 'content'), input.signature)) return 'it logs another signature';
      if (!sameKey(field(field(signature, 'publicKey'), 'content'), spki)) return 'it logs another key';
      return undefined;
    });
  }

  /** Logs a `dsse` 0.0.1 entry and returns it, checked. */
  addDsse(input: DsseInput): Promise<LogEntry> {
    const spki = spkiOf(input.publicKey);
    const proposed = {
      apiVersion: '0.0.1',
      kind: 'dsse',
      spec: {
        proposedContent: {
          envelope: input.envelopeJson,
          verifiers: [Buffer.from(pemOf(input.publicKey)).toString('base64')],
        },
      },
    };
    const payloadHash = createHash('sha256').update(input.payload).digest('hex');
    return this.add(proposed, (body) => {
      const spec = field(body, 'spec');
      const hash = field(spec, 'payloadHash');
      if (field(hash, 'algorithm') !== 'sha256' || field(hash, 'value') !== payloadHash)
        return 'it logs another payload';
      const signatures = field(spec, 'signatures');
      if (!Array.isArray(signatures) || signatures.length !== 1)
        return 'it does not log exactly one signature';
      const [only] = signatures as unknown[];
      if (!sameBase64(field(only, 'signature'), input.signature)) return 'it logs another signature';
      if (!sameKey(field(only, 'verifier'), spki)) return 'it logs another key';
      return undefined;
    });
  }

  /** POSTs `proposed`; reads the existing entry back on 409; checks the answer is `proposed`'s entry. */
  private async add(
    proposed: { readonly apiVersion: string; readonly kind: string },
    mismatch: (body: unknown) => string | undefined,
    what = `log a ${proposed.kind} entry`,
  ): Promise<LogEntry> {
    let answer = await this.http.send(
      {
        method: 'POST',
        url: this.entries,
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body: Buffer.from(JSON.stringify(proposed), 'utf8'),
        what,
      },
      [409],
    );
    if (answer.status === 409) {
      // The entry exists: the log names it in Location; read it from the same origin only.
      const location = answer.headers.get('location');
      if (location === null) throw this.http.error('invalid', `${what}: 409 without a Location`);
      answer = await this.http.send({
        method: 'GET',
        url: this.http.sameOrigin(location, this.entries, what),
        headers: { accept: 'application/json' },
        what: `${what} (existing entry)`,
      });
    }
    const entry = this.parseEntry(answer.body, what);
    let body: unknown;
    try {
      body = JSON.parse(entry.body.toString('utf8'));
    } catch (err) {
      throw this.http.error('invalid', `${what}: the entry body is not JSON`, err);
    }
    if (field(body, 'kind') !== proposed.kind || field(body, 'apiVersion') !== proposed.apiVersion) {
      throw this.http.error('invalid', `${what}: the entry is not a ${proposed.kind} ${proposed.apiVersion}`);
    }
    const problem = mismatch(body);
    if (problem !== undefined) throw this.http.error('invalid', `${what}: not the entry sent: ${problem}`);
    return { ...entry, kind: proposed.kind, apiVersion: proposed.apiVersion };
  }

  /** `{"<uuid>": {body, integratedTime, logID, logIndex, verification: {signedEntryTimestamp, inclusionProof?}}}`. */
  private parseEntry(bytes: Buffer, what: string): Omit<LogEntry, 'kind' | 'apiVersion'> {
    const invalid = (why: string): Error => this.http.error('invalid', `${what}: ${why}`);
    let json: unknown;
    try {
      json = JSON.parse(bytes.toString('utf8'));
    } catch (err) {
      throw this.http.error('invalid', `${what}: the answer is not JSON`, err);
    }
    const keys = isObject(json) ? Object.keys(json) : [];
    const [uuid] = keys;
    if (!isObject(json) || keys.length !== 1 || uuid === undefined || !ENTRY_UUID.test(uuid))
      throw invalid('the answer is not one entry keyed by its UUID');
    const entry = json[uuid];
    const body = field(entry, 'body');
    const integratedTime = field(entry, 'integratedTime');
    const logIndex = field(entry, 'logIndex');
    const logID = field(entry, 'logID');
    const verification = field(entry, 'verification');
    const set = field(verification, 'signedEntryTimestamp');
    if (typeof body !== 'string' || !BASE64.test(body)) throw invalid('the entry has no base64 body');
    if (!Number.isSafeInteger(integratedTime) || (integratedTime as number) <= 0)
      throw invalid('the entry has no integratedTime');
    if (!Number.isSafeInteger(logIndex) || (logIndex as number) < 0)
      throw invalid('the entry has no logIndex');
    if (typeof logID !== 'string' || logID.length !== 64 || !HEX.test(logID))
      throw invalid('the entry has no logID');
    if (typeof set !== 'string' || !BASE64.test(set))
      throw invalid('the entry has no signedEntryTimestamp (SET)');
    const proof = field(verification, 'inclusionProof');
    return {
      uuid,
      body: Buffer.from(body, 'base64'),
      integratedTime: integratedTime as number,
      logIndex: logIndex as number,
      logID,
      signedEntryTimestamp: Buffer.from(set, 'base64'),
      inclusionProof: proof === undefined ? undefined : parseInclusionProof(proof, invalid),
    };
  }
}

function parseInclusionProof(proof: unknown, invalid: (why: string) => Error): InclusionProof {
  const logIndex = field(proof, 'logIndex');
  const treeSize = field(proof, 'treeSize');
  const rootHash = field(proof, 'rootHash');
  const hashes = field(proof, 'hashes') ?? [];
  const checkpoint = field(proof, 'checkpoint');
  const isHash = (h: unknown): h is string => typeof h === 'string' && h.length === 64 && HEX.test(h);
  if (
    !Number.isSafeInteger(logIndex) ||
    !Number.isSafeInteger(treeSize) ||
    !isHash(rootHash) ||
    !Array.isArray(hashes) ||
    !hashes.every(isHash) ||
    typeof checkpoint !== 'string' ||
    checkpoint.length === 0
  ) {
    throw invalid('the inclusion proof is malformed');
  }
  return {
    logIndex: logIndex as number,
    treeSize: treeSize as number,
    rootHash,
    hashes: hashes as string[],
    checkpoint,
  };
}

const field = (value: unknown, name: string): unknown => (isObject(value) ? value[name] : undefined);

const spkiOf = (key: KeyObject): Buffer => key.export({ format: 'der', type: 'spki' });
const pemOf = (key: KeyObject): string => key.export({ format: 'pem', type: 'spki' }).toString();

const sameBase64 = (value: unknown, expected: Buffer): boolean =>
  typeof value === 'string' && BASE64.test(value) && Buffer.from(value, 'base64').equals(expected);

/** True when `value` is base64 of a PEM public key with these SPKI bytes (whatever its line breaks). */
function sameKey(value: unknown, spki: Buffer): boolean {
  if (typeof value !== 'string' || !BASE64.test(value)) return false;
  try {
    return spkiOf(createPublicKey(Buffer.from(value, 'base64').toString('utf8'))).equals(spki);
  } catch {
    return false;
  }
}
