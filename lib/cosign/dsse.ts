/**
 * DSSE envelopes over in-toto statements, as cosign v3 signs images: the payload type, the
 * statement and predicate types, the statement itself, and what a DSSE signature signs.
 */

/** The DSSE payload type of in-toto statements. */
export const IN_TOTO_PAYLOAD_TYPE = 'application/vnd.in-toto+json';
/** The `_type` of an in-toto v1 statement. */
export const IN_TOTO_STATEMENT_V1 = 'https://in-toto.io/Statement/v1';
/** The predicate cosign v3 signs images with. */
export const COSIGN_SIGN_PREDICATE = 'https://sigstore.dev/cosign/sign/v1';

/** DSSE v1 pre-authentication encoding: what a DSSE signature signs. */
export function preAuthEncoding(payloadType: string, payload: Buffer): Buffer {
  const type = Buffer.from(payloadType, 'utf8');
  return Buffer.concat([
    Buffer.from(`DSSEv1 ${type.length} `, 'utf8'),
    type,
    Buffer.from(` ${payload.length} `, 'utf8'),
    payload,
  ]);
}

/** The in-toto statement cosign v3 signs for an image: the digest, named by its repository. */
export function cosignSignStatement(imageName: string, digest: string): Buffer {
  return Buffer.from(
    JSON.stringify({
      _type: IN_TOTO_STATEMENT_V1,
      subject: [{ name: imageName, digest: { sha256: digest.slice('sha256:'.length) } }],
      predicateType: COSIGN_SIGN_PREDICATE,
      predicate: {},
    }),
    'utf8',
  );
}
