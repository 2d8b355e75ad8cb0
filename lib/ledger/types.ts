/**
 * The ledger: the record of what Signet signed and what it decided, and the findings of
 * continuous re-verification. One interface, two stores: SQLite in the local service's journal
 * file (`sqlite.ts`), DynamoDB on AWS (`dynamodb.ts`). Times are epoch milliseconds.
 */

/** One signature Signet wrote (or found already written) for one rule and digest. */
export interface SignatureRecord {
  /** Deterministic: the same rule signing the same payload again is the same record. */
  readonly id: string;
  /** When Signet recorded the outcome: the signing time for `signed`. */
  readonly signedAt: number;
  readonly registry: string;
  readonly repository: string;
  /** The pushed tag (named in the payload for `default` signatures). */
  readonly tag: string | undefined;
  readonly digest: string;
  readonly rule: string;
  readonly witness: string;
  /** `sha256:<hex>` of the key's SPKI, as in the payload's `dev.signet/key-id`. */
  readonly keyId: string | undefined;
  readonly algorithm: string;
  readonly signatureType: string;
  /** `signed` now, or `already-signed` (it was in the registry when Signet looked). */
  readonly status: 'signed' | 'already-signed';
  /** `registry/repository:sha256-<hex>.sig`. */
  readonly signatureRef: string;
  /** The Sigstore bundle referrer, for rules with `bundle: true` that wrote one. */
  readonly bundleRef: string | undefined;
  /** The rule's conditions that held (pushedBy, scan, signedBy), as configured; undefined: none. */
  readonly conditions: Readonly<Record<string, unknown>> | undefined;
  /** The push event's id (EventBridge id, notification id), when it had one. */
  readonly eventId: string | undefined;
  /** Which edge recorded it: `serve`, `lambda`, `cli`. */
  readonly recordedBy: string;
}

/** What one decision did to an image, or to the whole request. */
export type DecisionEffect = 'allow' | 'warn' | 'deny';

/** A policy's verdict on one image of a decision. */
export interface DecisionPolicy {
  readonly policy: string;
  readonly effect: 'pass' | 'deny' | 'warn';
  /** The reason code when it did not verify. */
  readonly reason: string | undefined;
}

/** One image of a decision. */
export interface DecisionImage {
  /** Where it came from (`spec.containers[0].image`), for admission reviews. */
  readonly field: string | undefined;
  /** The image as written. */
  readonly image: string;
  /** Canonical `registry/repository[:tag][@digest]`, when it parsed. */
  readonly reference: string | undefined;
  /** `registry/repository`, when it parsed (what `--image` queries match). */
  readonly repository: string | undefined;
  /** The digest verified (given, or resolved from the tag). */
  readonly digest: string | undefined;
  readonly verdict: DecisionEffect;
  readonly reason: string | undefined;
  readonly policies: readonly DecisionPolicy[];
}

/** Where a decision was asked for. */
export type DecisionSource = 'admission' | 'verify';

/** One admission review answered, or one `POST /verify`. */
export interface DecisionRecord {
  readonly id: string;
  readonly decidedAt: number;
  readonly source: DecisionSource;
  /** The AdmissionReview's uid. */
  readonly uid: string | undefined;
  readonly operation: string | undefined;
  /** `Kind namespace/name` of the admitted object. */
  readonly object: string | undefined;
  readonly dryRun: boolean;
  readonly cluster: string | undefined;
  readonly namespace: string | undefined;
  readonly effect: DecisionEffect;
  /** Why it was denied or warned about: the denial message, the warnings. */
  readonly reasons: readonly string[];
  readonly images: readonly DecisionImage[];
}

/**
 * An image admitted to run somewhere (an allowed, non-dry-run admission review that verified it
 * against at least one policy): what re-verification checks again. One per (reference, digest,
 * namespace, cluster), updated at every admission.
 */
export interface AdmittedImage {
  /** Canonical `registry/repository[:tag][@digest]` as admitted. */
  readonly reference: string;
  readonly digest: string;
  /** '' when unknown. */
  readonly namespace: string;
  /** '' when unknown. */
  readonly cluster: string;
  /** `allow`: verified; `warn`: admitted with warnings (audit mode, failurePolicy: allow). */
  readonly verdict: 'allow' | 'warn';
  readonly lastAdmittedAt: number;
}

/** An admitted image that is no longer trusted when re-verified. */
export interface Finding {
  /** Deterministic per (reference, digest, namespace, cluster): one open finding per placement. */
  readonly id: string;
  readonly reference: string;
  readonly digest: string;
  readonly namespace: string;
  readonly cluster: string;
  /** The reason code: `NO_SIGNATURES`, `SIGNATURE_REVOKED`, `TAG_MOVED`, `INSUFFICIENT_WITNESSES`, ... */
  readonly code: string;
  readonly message: string;
  /** The policies that no longer pass. */
  readonly policies: readonly string[];
  readonly firstFoundAt: number;
  readonly lastFoundAt: number;
  /** Set when a later round found the image trusted again. */
  readonly resolvedAt: number | undefined;
  readonly lastAdmittedAt: number;
  /** When `Image Trust Lost` went out; undefined: not yet (the next round tries again). */
  readonly announcedAt: number | undefined;
}

/** What `signet ledger` asks; every field given must match. */
export interface LedgerQuery {
  /** `registry/repository`. */
  readonly repository?: string;
  /** With `repository`: only this tag. */
  readonly tag?: string;
  readonly digest?: string;
  /** Signatures by this witness (decisions have no witness and never match it). */
  readonly witness?: string;
  /** At or after (epoch ms). */
  readonly since?: number;
  /** Before (epoch ms). */
  readonly until?: number;
  /** Most recent first, at most this many. */
  readonly limit?: number;
}

/** What a recorder writes at once. */
export interface LedgerBatch {
  readonly signatures: readonly SignatureRecord[];
  readonly decisions: readonly DecisionRecord[];
  readonly admitted: readonly AdmittedImage[];
}

/** The ledger store. Writes are idempotent per record id; a signature keeps its first record. */
export interface Ledger {
  write(batch: LedgerBatch): Promise<void>;
  signatures(query: LedgerQuery): Promise<SignatureRecord[]>;
  decisions(query: LedgerQuery): Promise<DecisionRecord[]>;
  /** Images last admitted at or after `since`. */
  admitted(since: number): Promise<AdmittedImage[]>;
  /** Open findings, most recent first; with `includeResolved` the resolved ones too. */
  findings(options?: { readonly includeResolved?: boolean }): Promise<Finding[]>;
  /** Creates or replaces findings (by id). */
  saveFindings(findings: readonly Finding[]): Promise<void>;
  /** Deletes what the retention makes old; a store that expires items itself does nothing. */
  prune(now: number): Promise<void>;
  close(): Promise<void>;
}

/** Admitted images, findings and retention share one key per placement. */
export const placementKey = (p: {
  readonly reference: string;
  readonly digest: string;
  readonly namespace: string;
  readonly cluster: string;
}): string => `${p.reference}|${p.digest}|${p.namespace}|${p.cluster}`;

const DAY_MS = 86_400_000;
export const daysMs = (days: number): number => Math.round(days * DAY_MS);
