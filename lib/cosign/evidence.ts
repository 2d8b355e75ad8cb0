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
  /** What certificate and keyless witnesses verify besides the signature (certificates, log entries, timestamps). */
  readonly material: SigstoreMaterial;
}

/**
 * The Sigstore verification material a signature came with, as its format carries it. Switch on
 * `$case`.
 * - `cosign-layer`: the `.sig` layer's annotations (signature, `dev.sigstore.cosign/certificate`,
 *   `/chain`, `/bundle`, `/rfc3161timestamp`); the payload is the evidence's `signedData`.
 * - `sigstore-bundle`: the bundle as parsed JSON, and for a message-signature bundle the signed
 *   artifact (the image manifest's bytes).
 */
export type SigstoreMaterial =
  | { readonly $case: 'cosign-layer'; readonly annotations: Readonly<Record<string, string>> }
  | { readonly $case: 'sigstore-bundle'; readonly bundle: unknown; readonly artifact: Buffer | undefined };

/** A signature that could not be read, and why (shown in verification detail). */
export interface RejectedSignature {
  readonly source: SignatureSource;
  readonly id: string;
  readonly problem: string;
}
