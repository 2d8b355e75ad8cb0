/**
 * Which pushed content can be signed, by media type. Kept here rather than imported from
 * `lib/registry` so that `events` depends on `core` only.
 */

/** Manifest media types a signature can point at: OCI and Docker images and indexes. */
export const SIGNABLE_MANIFEST_MEDIA_TYPES: ReadonlySet<string> = new Set([
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
]);

/**
 * Docker image manifest v2 schema 1 (unsigned and JWS-signed). Its digest depends on the
 * embedded signature, so registries do not serve it stably and cosign cannot sign it.
 */
export const SCHEMA1_MEDIA_TYPES: ReadonlySet<string> = new Set([
  'application/vnd.docker.distribution.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v1+prettyjws',
]);

export const SCHEMA1_REASON = 'schema1 manifests cannot be signed';
export const NOT_SHA256_REASON = 'only sha256 manifest digests can be signed';
