/**
 * A signature as read from a registry, whatever format carried it: the exact bytes signed, the
 * signature, and what it claims about the image. Readers of each format produce these; witness
 * checks (verification) and "already signed?" checks (signing) consume them.
 */

/** Where a signature was found. */
export type SignatureSource = 'cosign' | 'bundle';

/** What a signature claims about the image it signs. */
export interface SignatureClaims {
  /** The manifest digests the signed payload names (`docker-manifest-digest`, or statement subjects). */
  readonly digests: readonly string[];
  /** `critical.identity.docker-reference` of a cosign payload. */
  readonly identity: string | undefined;
  /**
   * Each digest with the repository the signature names for it, as written: a cosign payload's
   * docker-reference, a statement's subject names. Matched against the policy's signedIdentity.
   */
  readonly subjects: readonly { readonly digest: string; readonly name: string | undefined }[];
  /** The tag of a default-mode identity (`repository:tag`); undefined for simple mode and bundles. */
  readonly tag: string | undefined;
}

/** One signature ready for a key: the exact bytes signed, the signature, and the claims. */
export interface SignatureEvidence {
  readonly source: SignatureSource;
  /** The payload blob digest (cosign) or the bundle manifest digest. */
  readonly id: string;
  readonly signedData: Buffer;
  readonly signature: Buffer;
  readonly claims: SignatureClaims;
  /** The PEM certificate that came with the signature (keyless signers), if any. */
  readonly certificate: string | undefined;
}

/** A signature that could not be read, and why (shown in verification detail). */
export interface RejectedSignature {
  readonly source: SignatureSource;
  readonly id: string;
  readonly problem: string;
}
