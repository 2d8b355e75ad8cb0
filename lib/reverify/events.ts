/**
 * The `Image Trust Lost` event: the same detail on EventBridge (AWS) and in the local webhook's
 * envelope, so one consumer reads both.
 */
import type { Finding } from '../ledger/types';

/** `detail-type` of the event. */
export const IMAGE_TRUST_LOST = 'Image Trust Lost';

/** The detail of an `Image Trust Lost` event (source `signet`). */
export interface ImageTrustLostDetail {
  readonly findingId: string;
  /** Canonical `registry/repository[:tag][@digest]` as admitted. */
  readonly image: string;
  readonly digest: string;
  readonly namespace: string | null;
  readonly cluster: string | null;
  /** `NO_SIGNATURES`, `SIGNATURE_REVOKED`, `TAG_MOVED`, `INSUFFICIENT_WITNESSES`, ... */
  readonly code: string;
  readonly message: string;
  readonly policies: readonly string[];
  /** ISO 8601. */
  readonly foundAt: string;
  readonly lastAdmittedAt: string;
}

/** The detail of one finding. */
export function trustLostDetail(finding: Finding): ImageTrustLostDetail {
  return {
    findingId: finding.id,
    image: finding.reference,
    digest: finding.digest,
    namespace: finding.namespace === '' ? null : finding.namespace,
    cluster: finding.cluster === '' ? null : finding.cluster,
    code: finding.code,
    message: finding.message,
    policies: finding.policies,
    foundAt: new Date(finding.firstFoundAt).toISOString(),
    lastAdmittedAt: new Date(finding.lastAdmittedAt).toISOString(),
  };
}
