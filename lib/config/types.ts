/**
 * The fully-specified configuration Signet runs on. The loader fills every default once, so code
 * that receives a `SignetConfig` never asks "was this set?".
 */

/** Signing algorithms, by their canonical (AWS KMS) names. */
export type SigningAlgorithm =
  'RSASSA_PSS_SHA_256' | 'RSASSA_PKCS1_V1_5_SHA_256' | 'ECDSA_SHA_256' | 'ECDSA_SHA_384';

/** The names users may write: the KMS spellings and the Alibaba ACR spellings. */
export const ALGORITHM_ALIASES: Readonly<Record<string, SigningAlgorithm>> = {
  RSASSA_PSS_SHA_256: 'RSASSA_PSS_SHA_256',
  RSA_PSS_SHA_256: 'RSASSA_PSS_SHA_256',
  RSASSA_PKCS1_V1_5_SHA_256: 'RSASSA_PKCS1_V1_5_SHA_256',
  RSA_PKCS1_SHA_256: 'RSASSA_PKCS1_V1_5_SHA_256',
  ECDSA_SHA_256: 'ECDSA_SHA_256',
  ECDSA_SHA_384: 'ECDSA_SHA_384',
};

/** Where a witness's key lives. A tagged union: switch on `$case`. */
export type KeyReference =
  /** A PKCS#8 PEM private key on disk (RSA or EC); signs and verifies. */
  | { readonly $case: 'file'; readonly path: string }
  /** An AWS KMS asymmetric key: key id, key ARN, alias name or alias ARN; signs and verifies. */
  | {
      readonly $case: 'kms';
      readonly keyId: string;
      /** Region from the ARN, else from the environment. */
      readonly region: string | undefined;
      /** Endpoint override, from `awskms://host:port/...` (cosign's URI form). */
      readonly endpoint: string | undefined;
    }
  /** A PEM SPKI public key on disk; verify only. */
  | { readonly $case: 'publicKeyFile'; readonly path: string }
  /** A PEM SPKI public key inline in the config; verify only. */
  | { readonly $case: 'publicKeyPem'; readonly pem: string }
  /**
   * X.509 certificates; verify only. A signature counts when its signing certificate chains to
   * `rootPaths` (or, without roots, is the pinned `certificatePath` itself) and was valid when the
   * signature was made. All paths absolute.
   */
  | {
      readonly $case: 'certificate';
      /** The signing certificate, pinned: only signatures by this certificate count. */
      readonly certificatePath: string | undefined;
      /** Intermediates (cosign's `--certificate-chain`: intermediates, optionally ending in the root). */
      readonly chainPath: string | undefined;
      /** Trust anchors: PEM files of one or more root certificates. */
      readonly rootPaths: readonly string[];
      /**
       * The `trusted_root.json` whose Rekor logs and timestamp authorities vouch for the signing
       * time; undefined: the Sigstore public-good root.
       */
      readonly trustedRootPath: string | undefined;
      /** Deny signatures without a verified signing time (instead of judging them at verification time). */
      readonly requireSignedTime: boolean;
    }
  /** A keyless (Fulcio) identity: OIDC issuer and subject, checked against a Sigstore trusted root; verify only. */
  | {
      readonly $case: 'keyless';
      /** The OIDC issuer, compared exactly. */
      readonly issuer: string;
      readonly subject: KeylessSubject;
      /** A private Sigstore's `trusted_root.json` (absolute); undefined: the Sigstore public-good root. */
      readonly trustedRootPath: string | undefined;
      /** GitHub workflow claims the certificate must carry; undefined: none required. */
      readonly github: GithubClaims | undefined;
    };

/** How a keyless certificate's subject must look: exactly, or a whole match of an RE2-syntax pattern. */
export type KeylessSubject =
  | { readonly $case: 'exact'; readonly subject: string }
  | { readonly $case: 'pattern'; readonly pattern: string };

/** GitHub Actions claims Fulcio writes into keyless certificates; each one given must match exactly. */
export interface GithubClaims {
  /** `owner/repo`. */
  readonly repository: string | undefined;
  /** `refs/heads/main`, `refs/tags/v1.2.3`. */
  readonly ref: string | undefined;
  /** The event that ran the workflow (`push`, `release`, `workflow_dispatch`). */
  readonly trigger: string | undefined;
}

/**
 * A Sigstore service a signing witness calls each time it signs: a Rekor transparency log (the
 * base URL, as cosign's `--rekor-url`) or an RFC 3161 timestamp authority (the endpoint URL, as
 * cosign's `--timestamp-server-url`). https, or http on a loopback host; no credentials, query or fragment.
 */
export interface WitnessService {
  readonly url: string;
}

/** A named trusted signer bound to one key (Alibaba Security Center's "witness"). */
export interface Witness {
  readonly name: string;
  /**
   * The witness's key; for a witness with several keys (`keys:`), the one that signs last: the
   * latest `notBefore` among its keys that can sign, else its first key.
   */
  readonly key: KeyReference;
  readonly description: string | undefined;
  /** Signing witnesses only: every signature gets a `hashedrekord` entry in this Rekor (v1 API). Absent: none. */
  readonly transparencyLog?: WitnessService;
  /** Signing witnesses only: every signature gets an RFC 3161 timestamp from this TSA. Absent: none. */
  readonly timestampAuthority?: WitnessService;
  /** A witness with several keys (`keys:`); undefined: its one `key`, valid at any time. */
  readonly rotation?: KeyRotation;
}

/** The kinds of key a rotating witness may list: the ones that are one fixed key. */
export type SingleKeyReference = Extract<
  KeyReference,
  { $case: 'file' | 'kms' | 'publicKeyFile' | 'publicKeyPem' }
>;

/** One key of a rotating witness and when it is valid (epoch ms, both ends included; undefined: unbounded). */
export interface WitnessKeyVersion {
  readonly key: SingleKeyReference;
  readonly notBefore: number | undefined;
  readonly notAfter: number | undefined;
}

/**
 * A witness's keys over time (`keys:`): it signs with the newest valid key that can sign, and a
 * signature counts when one of its keys verifies it and was valid when it was made (a verified
 * log or timestamp time, else the verification time).
 */
export interface KeyRotation {
  /** In the order the config lists them. */
  readonly keys: readonly WitnessKeyVersion[];
  /**
   * The `trusted_root.json` (absolute) whose Rekor logs and timestamp authorities vouch for
   * signing times; undefined: the Sigstore public-good root.
   */
  readonly trustedRootPath: string | undefined;
}

/** How Signet authenticates to a registry. */
export type RegistryAuth =
  /** No credentials; bearer-token challenges are answered anonymously. */
  | { readonly $case: 'anonymous' }
  /** Username and password, used for Basic auth and for bearer-token requests. */
  | { readonly $case: 'basic'; readonly username: string; readonly password: string }
  /** Amazon ECR: credentials from `GetAuthorizationToken`. */
  | { readonly $case: 'ecr'; readonly region: string | undefined; readonly endpoint: string | undefined };

/**
 * What software a registry runs, which decides what its events can tell: distribution's carry the
 * pusher (`actor.name`) and no scan; Harbor's carry the pusher (`operator`) and scan results
 * (`SCANNING_COMPLETED`); ECR's push events carry no pusher (CloudTrail's `PutImage` does) and its
 * scans arrive as `ECR Image Scan` / `Inspector2 Scan` events.
 */
export type RegistryKind = 'distribution' | 'harbor' | 'ecr';

/** A registry Signet talks to. */
export interface RegistryConfig {
  /** `host[:port]`, as it appears in image references. */
  readonly host: string;
  /** Default: `ecr` for ECR hosts, else `distribution`. */
  readonly kind: RegistryKind;
  /** Signet starts the distribution registry on this host for local use. */
  readonly embedded: boolean;
  /** Plain HTTP. Only for local registries. */
  readonly insecure: boolean;
  readonly auth: RegistryAuth;
  /** Where the embedded registry keeps its data (absolute). */
  readonly dataDir: string;
}

export type SignatureType = 'default' | 'simple';
export type Trigger = 'automatic' | 'manual';

/** What to sign, with which witness and how (Alibaba ACR's "signing rule"). */
export interface SigningRule {
  readonly name: string;
  /** Registry namespaces: the first path segment of a repository. */
  readonly namespaces: readonly string[];
  /** Repository globs (`*` within a segment, `**` across segments). */
  readonly repositories: readonly string[];
  /** Registry hosts the rule covers; empty means every configured registry. */
  readonly registries: readonly string[];
  readonly witness: string;
  readonly algorithm: SigningAlgorithm;
  /** `default` signs digest and tag; `simple` signs the digest only. */
  readonly signatureType: SignatureType;
  readonly trigger: Trigger;
  readonly enabled: boolean;
  /** For image indexes: also sign every child manifest. */
  readonly recursive: boolean;
  /** Also publish a Sigstore bundle (v0.3) referrer next to the cosign signature. */
  readonly bundle: boolean;
  /** Extra annotations written into the payload's `optional` section. */
  readonly annotations: Readonly<Record<string, string>>;
  /** What must hold before the rule signs; absent: nothing beyond the scope. */
  readonly conditions?: SigningConditions;
}

/** Vulnerability severities, lowest first. */
export type Severity = 'LOW' | 'MEDIUM' | 'HIGH' | 'CRITICAL';

/** A rule's scan condition: a scan result must exist and find nothing above `maxSeverity`. */
export interface ScanCondition {
  /** The highest severity a finding may have (`HIGH`: no CRITICAL finding). */
  readonly maxSeverity: Severity;
  /** Findings without a fix do not count (where the scanner says which are fixable). */
  readonly ignoreUnfixed: boolean;
  /** How long a push waits for its scan before it is reported not signed (`SCAN_TIMEOUT`). */
  readonly waitSeconds: number;
}

/** Everything a signing rule requires of a push before it signs; every field present must hold. */
export interface SigningConditions {
  /** Globs over the pusher's identity (distribution `actor.name`, Harbor `operator`, CloudTrail `userIdentity.arn`). */
  readonly pushedBy: readonly string[] | undefined;
  readonly scan: ScanCondition | undefined;
  /** Witnesses of which one must already have a valid signature for the digest (countersigning). */
  readonly signedBy: readonly string[] | undefined;
  /** How the `signedBy` signature's identity must relate to the pushed image; `matchRepository` by default. */
  readonly signedIdentity: SignedIdentity;
}

export type PolicyMode = 'enforce' | 'audit';

/** A set of witnesses of which at least `count` must have signed. */
export interface AttestorSet {
  readonly witnesses: readonly string[];
  /** Equal to `witnesses.length` when the config leaves it out. */
  readonly count: number;
}

/**
 * How the identity a signature names (cosign's `critical.identity.docker-reference`, a bundle's
 * subject name) must relate to the admitted image; the names of containers/image's policy.json.
 * A signature vouches for a digest *at a repository*: without this check, a signature made for
 * `dev/app` would admit the same digest copied into `prod/app`.
 */
export type SignedIdentity =
  /** The signed repository (registry and path) equals the image's; a signed tag must equal the admitted tag. */
  | { readonly type: 'matchRepository' }
  /** The signed repository equals `dockerRepository`, wherever the image is admitted from. */
  | { readonly type: 'exactRepository'; readonly dockerRepository: string }
  /**
   * An image under `prefix` is checked as if it were under `signedPrefix` (mirrors, replicas,
   * pull-through caches); other images as `matchRepository`.
   */
  | { readonly type: 'remapIdentity'; readonly prefix: string; readonly signedPrefix: string }
  /** Only the digest counts: any repository's signature for it is accepted (an explicit opt-out). */
  | { readonly type: 'matchDigest' };

/** Where verification applies and what it requires. */
export interface Policy {
  readonly name: string;
  readonly enabled: boolean;
  /** Cluster ids; `*` for any. */
  readonly clusters: readonly string[];
  /** Kubernetes namespaces; `*` for any. */
  readonly namespaces: readonly string[];
  /** Image reference globs (`**` crosses `/`). */
  readonly images: readonly string[];
  /** Every set must pass. */
  readonly attestors: readonly AttestorSet[];
  readonly mode: PolicyMode;
  /** Rewrite admitted tag references to the verified digest. */
  readonly mutateDigest: boolean;
  /** On registry or KMS errors: deny (fail closed, the default) or allow. */
  readonly failurePolicy: 'deny' | 'allow';
  /** How the signature's identity must match the image; `matchRepository` by default. */
  readonly signedIdentity: SignedIdentity;
}

export type NoMatchingPolicy = 'deny' | 'allow' | 'warn';

/** Admission-wide settings. */
export interface AdmissionSettings {
  readonly noMatchingPolicy: NoMatchingPolicy;
  /** Positive verification results are reused for this long. */
  readonly cacheTtlSeconds: number;
  readonly cacheMaxEntries: number;
  /** Kubernetes namespaces never checked (e.g. kube-system). */
  readonly excludeNamespaces: readonly string[];
  /** A review (AdmissionReview or `/verify`) that has not decided by then is denied. */
  readonly deadlineMs: number;
  /** Layers of one `.sig` manifest (and bundle referrers of one digest) considered; the rest are ignored. */
  readonly maxSignatures: number;
  /** Bytes read from registries for one review, all images together; past it the review denies. */
  readonly maxReviewBytes: number;
}

/** The local service (`signet serve`). */
export interface ServerSettings {
  readonly port: number;
  readonly host: string;
  readonly maxBodyBytes: number;
  /** Bearer token required on /admission and /verify; undefined means none. */
  readonly bearerToken: string | undefined;
  /** Secret first path segment required on /admission and /verify; undefined means none. */
  readonly secretPath: string | undefined;
  /**
   * Bearer token required on every `/events/*` route. Undefined: only the embedded registry (with
   * the token Signet generates for it at start) can deliver events.
   */
  readonly eventsToken: string | undefined;
  /** Requests handled at once; more are answered 503 with Retry-After before their body is read. */
  readonly maxInFlight: number;
  /** HTTPS: the serving certificate and key (PEM, reloaded when they change); undefined: plain HTTP. */
  readonly tls: TlsSettings | undefined;
  /** How long a stop (SIGTERM) waits for reviews and signings in flight. */
  readonly shutdownGraceMs: number;
}

/** The local service's TLS files (absolute paths). */
export interface TlsSettings {
  readonly certFile: string;
  readonly keyFile: string;
  /** Clients must present a certificate signed by one of these CAs (mutual TLS). */
  readonly clientCaFile: string | undefined;
}

/** The local service's durable journal of accepted pushes (`signet serve`). */
export interface JournalSettings {
  /** The SQLite file (absolute). */
  readonly path: string;
  /** Attempts at a push before it is dead-lettered. */
  readonly maxAttempts: number;
  /** Backoff between attempts: exponential from `retryBaseMs`, capped at `retryMaxMs`, with jitter. */
  readonly retryBaseMs: number;
  readonly retryMaxMs: number;
  /** Pushes signed at once. */
  readonly concurrency: number;
}

/**
 * Continuous re-verification (`reverify:`): images admitted within the window are checked again
 * against the current policies, keys and signatures; one no longer trusted becomes a finding.
 */
export interface ReverifySettings {
  /** Time between rounds (on AWS rounded up to whole minutes, the scheduler's unit). */
  readonly intervalMs: number;
  /** Images admitted within this many days are re-checked. */
  readonly windowDays: number;
  /** Images re-checked at once. */
  readonly concurrency: number;
  /** Where the local service POSTs `Image Trust Lost` (https, or http on loopback); undefined: nowhere. */
  readonly webhookUrl: string | undefined;
}

/** How long the ledger keeps what it records (`ledger:`). */
export interface LedgerSettings {
  /** Admission decisions and resolved findings older than this are deleted; signatures are kept. */
  readonly retentionDays: number;
}

/** What a revocation voids: every signature by one witness key, or every signature one rule made. */
export type RevocationTarget =
  /** A witness key by its id, `sha256:<hex of the SPKI DER digest>` (the payload's `dev.signet/key-id`). */
  | { readonly $case: 'keyId'; readonly keyId: string }
  /** A signing rule by name (the payload's `dev.signet/rule`); the rule need not exist any more. */
  | { readonly $case: 'rule'; readonly rule: string };

/** Signatures that no longer count (`revocations[]`): "signatures by key K made after T are void". */
export interface Revocation {
  readonly target: RevocationTarget;
  /** Only signatures made after this time (epoch ms) are void; undefined: every signature. */
  readonly after: number | undefined;
  /** Free text, shown with the denial or finding. */
  readonly reason: string | undefined;
}

/** The whole configuration, loaded from one YAML file. */
export interface SignetConfig {
  /** Absolute path of the file it was loaded from, if any. */
  readonly source: string | undefined;
  /** Relative key paths resolve against this directory (the config file's). */
  readonly baseDir: string;
  readonly registries: readonly RegistryConfig[];
  readonly witnesses: readonly Witness[];
  readonly signingRules: readonly SigningRule[];
  readonly policies: readonly Policy[];
  readonly admission: AdmissionSettings;
  readonly server: ServerSettings;
  readonly journal: JournalSettings;
  /** Absent: no continuous re-verification. */
  readonly reverify: ReverifySettings | undefined;
  readonly revocations: readonly Revocation[];
  readonly ledger: LedgerSettings;
}
