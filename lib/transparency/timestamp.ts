/**
 * A small RFC 3161 client for signing: a `TimeStampReq` over sha256 of the signature (with a
 * random nonce and `certReq`), POSTed as `application/timestamp-query` to the configured URL, as
 * cosign's `--timestamp-server-url` does; the answer is the DER `TimeStampResp` cosign stores.
 *
 * What is checked in the answer: within the size limit, from the configured origin; it parses as
 * a TimeStampResp; its status is granted (or granted with modifications); the token is CMS
 * SignedData over a TSTInfo; the TSTInfo's message imprint is sha256 of this signature; its
 * nonce is ours; it has a generation time. The token's CMS signature and the TSA's certificate are
 * left to verifiers, which hold the TSA's trust anchors (a trusted root); Signet holds none for signing.
 */
import { createHash, randomBytes } from 'node:crypto';
import { ASN1Obj, RFC3161Timestamp } from '@sigstore/core';
import { DEFAULT_SERVICE_HTTP_OPTIONS, ServiceHttp, type ServiceHttpOptions } from './http';

const OID_SIGNED_DATA = '1.2.840.113549.1.7.2';
const OID_TSTINFO = '1.2.840.113549.1.9.16.1.4';

/** Timestamps signatures at one RFC 3161 timestamp authority. */
export class TimestampClient {
  private readonly http: ServiceHttp;

  constructor(url: string, options: ServiceHttpOptions = DEFAULT_SERVICE_HTTP_OPTIONS) {
    this.http = new ServiceHttp(
      new URL(url),
      { unavailable: 'TSA_UNAVAILABLE', refused: 'TSA_REFUSED', invalid: 'TSA_ANSWER_INVALID' },
      options,
    );
  }

  /** `scheme://host[:port]` of the authority. */
  get origin(): string {
    return this.http.origin;
  }

  /** A DER TimeStampResp whose token covers sha256(`signature`), checked. */
  async timestamp(signature: Buffer): Promise<Buffer> {
    const what = 'timestamp the signature';
    const imprint = createHash('sha256').update(signature).digest();
    const nonce = randomNonce();
    const answer = await this.http.send({
      method: 'POST',
      url: this.http.base,
      headers: { 'content-type': 'application/timestamp-query', accept: 'application/timestamp-reply' },
      body: timeStampRequest(imprint, nonce),
      what,
    });
    const invalid = (why: string, cause?: unknown): Error =>
      this.http.error('invalid', `${what}: ${why}`, cause);
    let ts: RFC3161Timestamp;
    let status: bigint;
    try {
      ts = RFC3161Timestamp.parse(Buffer.from(answer.body));
      status = ts.status;
    } catch (err) {
      throw invalid('the answer is not a DER TimeStampResp', err);
    }
    if (status !== 0n && status !== 1n) {
      throw this.http.error('refused', `${what}: the authority answered PKIStatus ${status}`);
    }
    let problem: string | undefined;
    try {
      const info = ts.tstInfo;
      problem =
        ts.contentType !== OID_SIGNED_DATA || ts.eContentType !== OID_TSTINFO
          ? 'the token is not SignedData over a TSTInfo'
          : info.messageImprintHashAlgorithm !== 'sha256' || !info.messageImprintHashedMessage.equals(imprint)
            ? 'the token does not cover this signature'
            : nonceOf(info.root)?.equals(nonce) !== true
              ? 'the token does not carry our nonce'
              : Number.isNaN(info.genTime.getTime())
                ? 'the token has no generation time'
                : undefined;
    } catch (err) {
      throw invalid('the token does not parse', err);
    }
    if (problem !== undefined) throw invalid(problem);
    return answer.body;
  }
}

/**
 * 6 random bytes, positive and with a non-zero first byte: a DER INTEGER's content as is. 48 bits
 * keep it a safe integer for TSAs that hold nonces as numbers (@sigstore/mock's does).
 */
function randomNonce(): Buffer {
  const nonce = randomBytes(6);
  nonce[0] = ((nonce[0] ?? 0) & 0x7f) | 0x40;
  return nonce;
}

/** TSTInfo's nonce: the first INTEGER after genTime (accuracy and ordering may come between). */
function nonceOf(tstInfo: ASN1Obj): Buffer | undefined {
  return tstInfo.subs.slice(5).find((sub) => sub.tag.isInteger())?.value;
}

/** DER TLV. */
function der(tag: number, content: Buffer): Buffer {
  const n = content.length;
  const length =
    n < 0x80
      ? Buffer.from([n])
      : n < 0x100
        ? Buffer.from([0x81, n])
        : Buffer.from([0x82, (n >> 8) & 0xff, n & 0xff]);
  return Buffer.concat([Buffer.from([tag]), length, content]);
}

/** `TimeStampReq { version v1, messageImprint {sha256, imprint}, nonce, certReq TRUE }`. */
export function timeStampRequest(imprint: Buffer, nonce: Buffer): Buffer {
  // 2.16.840.1.101.3.4.2.1
  const sha256 = der(0x06, Buffer.from([0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01]));
  const algorithm = der(0x30, Buffer.concat([sha256, Buffer.from([0x05, 0x00])]));
  const messageImprint = der(0x30, Buffer.concat([algorithm, der(0x04, imprint)]));
  return der(
    0x30,
    Buffer.concat([
      der(0x02, Buffer.from([1])),
      messageImprint,
      der(0x02, nonce),
      der(0x01, Buffer.from([0xff])),
    ]),
  );
}
