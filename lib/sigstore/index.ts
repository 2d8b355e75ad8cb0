/**
 * Sigstore verification for Signet: keyless witnesses (Fulcio certificate, Rekor entry, trusted
 * root, OIDC identity) and certificate witnesses (chain to configured roots at signing time), for
 * cosign `.sig` layers and Sigstore bundles alike. The cryptography is `@sigstore/verify`'s.
 */
export { certificateTrust, verifyCertificateChain } from './certificate';
export type { CertificateTrust, CertificateWitnessInput } from './certificate';
export { COSIGN_ANNOTATIONS, materialFromCosignLayer } from './cosign-layer';
export { keylessPolicy } from './identity';
export type { KeylessPolicyInput } from './identity';
export { verifyKeyless } from './keyless';
export { compilePattern, validatePattern } from './pattern';
export type { SubjectPattern } from './pattern';
export { loadTrustedRoot, parseTrustedRoot } from './trusted-root';
export type { TrustedRootSource } from './trusted-root';
export type * from './types';
export { isFailure } from './types';
