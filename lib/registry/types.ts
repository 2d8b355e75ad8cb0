/** OCI distribution: the shapes Signet reads and writes, and the client contract. */

/** The media types Signet reads and writes, by role. */
export const MEDIA_TYPES = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociEmpty: 'application/vnd.oci.empty.v1+json',
  cosignSimpleSigning: 'application/vnd.dev.cosign.simplesigning.v1+json',
  sigstoreBundle: 'application/vnd.dev.sigstore.bundle.v0.3+json',
} as const;

/** Every manifest media type Signet asks for (Accept) and understands. */
export const MANIFEST_MEDIA_TYPES: readonly string[] = [
  MEDIA_TYPES.ociManifest,
  MEDIA_TYPES.ociIndex,
  MEDIA_TYPES.dockerManifest,
  MEDIA_TYPES.dockerManifestList,
];

/** Whether a manifest media type is an index (OCI index or Docker manifest list). */
export const isIndexMediaType = (mediaType: string | undefined): boolean =>
  mediaType === MEDIA_TYPES.ociIndex || mediaType === MEDIA_TYPES.dockerManifestList;

/** An OCI content descriptor. */
export interface Descriptor {
  readonly mediaType: string;
  readonly digest: string;
  readonly size: number;
  readonly annotations?: Readonly<Record<string, string>>;
  readonly artifactType?: string;
  readonly platform?: Readonly<Record<string, unknown>>;
}

/** An image manifest (OCI or Docker v2 schema 2). */
export interface ImageManifest {
  readonly schemaVersion: 2;
  readonly mediaType?: string;
  readonly artifactType?: string;
  readonly config: Descriptor;
  readonly layers: readonly Descriptor[];
  readonly subject?: Descriptor;
  readonly annotations?: Readonly<Record<string, string>>;
}

/** An image index (OCI) or manifest list (Docker). */
export interface ImageIndex {
  readonly schemaVersion: 2;
  readonly mediaType?: string;
  readonly artifactType?: string;
  readonly manifests: readonly Descriptor[];
  readonly subject?: Descriptor;
  readonly annotations?: Readonly<Record<string, string>>;
}

/** A manifest as fetched: the exact bytes (whose sha256 is `digest`) and their parsed form. */
export interface FetchedManifest {
  readonly digest: string;
  readonly mediaType: string;
  readonly bytes: Buffer;
  readonly manifest: ImageManifest | ImageIndex;
}

/** What a HEAD on a manifest tells. */
export interface ManifestHead {
  readonly digest: string;
  readonly mediaType: string;
  readonly size: number;
}

/** Bytes a caller may still read across many requests; `take` throws RegistryError BUDGET_EXCEEDED past it. */
export interface ReadBudget {
  take(bytes: number, what: string): void;
}

/** Bounds on one read: an abort signal (a review's deadline) and a byte budget shared by a review. */
export interface ReadOptions {
  readonly signal?: AbortSignal;
  readonly budget?: ReadBudget;
}

/** Bounds on one blob read; `size` is the descriptor's, and the body must have exactly that many bytes. */
export interface BlobReadOptions extends ReadOptions {
  readonly size?: number;
}

/**
 * A client for one registry host. Every method retries throttling and 5xx with bounded backoff.
 * Reads take `ReadOptions`: the signal ends them (and their retry waits) with ABORTED, and every
 * body byte they read, error bodies and token answers included, is charged to the budget.
 */
export interface RegistryClient {
  readonly host: string;
  /** `undefined` when the manifest does not exist. */
  headManifest(
    repository: string,
    reference: string,
    options?: ReadOptions,
  ): Promise<ManifestHead | undefined>;
  /** `undefined` when the manifest does not exist. The digest of the bytes is checked. */
  getManifest(
    repository: string,
    reference: string,
    options?: ReadOptions,
  ): Promise<FetchedManifest | undefined>;
  /** Stores the manifest under `reference` (a tag or its digest); returns its digest. */
  putManifest(repository: string, reference: string, bytes: Buffer, mediaType: string): Promise<string>;
  /**
   * Fetches a blob and checks its digest. Throws NOT_FOUND when absent. With `size`, a body of any
   * other length is refused, and the read stops as soon as it passes `size`.
   */
  getBlob(repository: string, digest: string, options?: BlobReadOptions): Promise<Buffer>;
  /** Uploads a blob unless the registry already has it; returns its descriptor digest. */
  pushBlob(repository: string, bytes: Buffer): Promise<string>;
  /**
   * The referrers of a digest (OCI 1.1 referrers API), optionally filtered by artifactType.
   * `undefined` when the registry does not implement the API (the caller then reads the
   * `sha256-<hex>` fallback tag).
   */
  getReferrers(
    repository: string,
    digest: string,
    artifactType?: string,
    options?: ReadOptions,
  ): Promise<ImageIndex | undefined>;
}

/** Hands out one client per registry host, sharing connections and tokens. */
export interface RegistryClientFactory {
  client(host: string): RegistryClient;
}
