/**
 * An independent cosign-format signature writer for tests: plain `fetch` and node:crypto, no
 * Signet code. It writes what `cosign sign --key` writes (a simple-signing payload blob, an empty
 * image config, and an OCI manifest tagged `sha256-<hex>.sig` whose layer carries the base64
 * signature in `dev.cosignproject.cosign/signature`), so tests prove Signet verifies signatures it
 * did not produce. Options allow tampering: another payload digest, a signature over other bytes,
 * replacing instead of appending, copying layers from another image's signature.
 *
 *   await writeCosignSignature({ registryUrl, repository: 'team-a/app', digest, key });
 *   await writeCosignSignature({ ..., tag: 'v1' });                   // default mode: repo:v1
 *   await writeCosignSignature({ ..., payloadDigest: otherDigest });   // names another image
 *   await copySignatureLayers(registryUrl, 'team-a/app', fromDigest, toDigest);
 */
import { constants, createHash, sign, type KeyObject } from 'node:crypto';

const SIMPLE_SIGNING = 'application/vnd.dev.cosign.simplesigning.v1+json';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
export const COSIGN_SIGNATURE_ANNOTATION = 'dev.cosignproject.cosign/signature';

const sha256 = (bytes: Buffer): string => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

/** An OCI descriptor as cosign writes it. */
export interface LayerDescriptor {
  mediaType: string;
  size: number;
  digest: string;
  annotations?: Record<string, string>;
}

/** How the payload is signed. */
export interface SignOptions {
  /** RSA padding; default PKCS#1 v1.5 (what cosign uses for RSA keys). */
  readonly padding?: 'pkcs1' | 'pss';
  /** Default sha256 (cosign's choice); sha384 for P-384 keys signed like KMS does. */
  readonly hash?: 'sha256' | 'sha384';
  /** PSS salt length; default the hash length. */
  readonly saltLength?: number;
}

/** The cosign simple-signing payload, byte for byte as cosign marshals it. */
export function cosignPayload(
  identity: string,
  digest: string,
  optional: Record<string, string> | null = null,
): Buffer {
  return Buffer.from(
    JSON.stringify({
      critical: {
        identity: { 'docker-reference': identity },
        image: { 'docker-manifest-digest': digest },
        type: 'cosign container image signature',
      },
      optional,
    }),
    'utf8',
  );
}

/** Signs bytes the way cosign (and KMS-backed cosign) does: ASN.1 DER ECDSA, PKCS#1 v1.5 or PSS RSA. */
export function cosignSign(key: KeyObject, payload: Buffer, options: SignOptions = {}): Buffer {
  const hash = options.hash ?? 'sha256';
  if (key.asymmetricKeyType === 'rsa') {
    const pss = options.padding === 'pss';
    return sign(hash, payload, {
      key,
      padding: pss ? constants.RSA_PKCS1_PSS_PADDING : constants.RSA_PKCS1_PADDING,
      ...(pss ? { saltLength: options.saltLength ?? (hash === 'sha256' ? 32 : 48) } : {}),
    });
  }
  return sign(hash, payload, { key, dsaEncoding: 'der' });
}

/** The layer descriptor of a payload and its signature. */
export function cosignLayer(
  payload: Buffer,
  signature: Buffer,
  annotations: Record<string, string> = {},
): LayerDescriptor {
  return {
    mediaType: SIMPLE_SIGNING,
    size: payload.length,
    digest: sha256(payload),
    annotations: { ...annotations, [COSIGN_SIGNATURE_ANNOTATION]: signature.toString('base64') },
  };
}

/** The config blob go-containerregistry writes for a signature image. */
export function cosignConfig(layers: readonly LayerDescriptor[]): Buffer {
  return Buffer.from(
    JSON.stringify({
      architecture: '',
      created: '0001-01-01T00:00:00Z',
      history: layers.map(() => ({ created: '0001-01-01T00:00:00Z' })),
      os: '',
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) },
      config: {},
    }),
    'utf8',
  );
}

/** The `.sig` manifest for layers and their config. */
export function cosignManifest(layers: readonly LayerDescriptor[], config: Buffer): Buffer {
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: OCI_CONFIG, size: config.length, digest: sha256(config) },
      layers,
    }),
    'utf8',
  );
}

export const signatureTagOf = (digest: string): string => `${digest.replace(':', '-')}.sig`;

async function putBlob(registryUrl: string, repository: string, bytes: Buffer): Promise<string> {
  const digest = sha256(bytes);
  const head = await fetch(`${registryUrl}/v2/${repository}/blobs/${digest}`, { method: 'HEAD' });
  if (head.status === 200) return digest;
  const start = await fetch(`${registryUrl}/v2/${repository}/blobs/uploads/`, { method: 'POST' });
  if (start.status !== 202) throw new Error(`blob upload start: HTTP ${start.status}`);
  const location = new URL(start.headers.get('location') ?? '', registryUrl);
  location.searchParams.set('digest', digest);
  const put = await fetch(location, {
    method: 'PUT',
    body: new Uint8Array(bytes),
    headers: { 'content-type': 'application/octet-stream' },
  });
  if (put.status !== 201) throw new Error(`blob upload: HTTP ${put.status} ${await put.text()}`);
  return digest;
}

/** The layers of a digest's `.sig` manifest, or [] when there is none. */
export async function readSignatureLayers(
  registryUrl: string,
  repository: string,
  digest: string,
): Promise<LayerDescriptor[]> {
  const res = await fetch(`${registryUrl}/v2/${repository}/manifests/${signatureTagOf(digest)}`, {
    headers: { accept: OCI_MANIFEST },
  });
  if (res.status === 404) return [];
  if (res.status !== 200) throw new Error(`GET signature manifest: HTTP ${res.status}`);
  return ((await res.json()) as { layers: LayerDescriptor[] }).layers;
}

/** Writes the `.sig` manifest of `digest` with exactly these layers (their blobs must exist). */
export async function putSignatureManifest(
  registryUrl: string,
  repository: string,
  digest: string,
  layers: readonly LayerDescriptor[],
): Promise<string> {
  const config = cosignConfig(layers);
  await putBlob(registryUrl, repository, config);
  const manifest = cosignManifest(layers, config);
  const res = await fetch(`${registryUrl}/v2/${repository}/manifests/${signatureTagOf(digest)}`, {
    method: 'PUT',
    headers: { 'content-type': OCI_MANIFEST },
    body: new Uint8Array(manifest),
  });
  if (res.status !== 201) throw new Error(`PUT signature manifest: HTTP ${res.status} ${await res.text()}`);
  return sha256(manifest);
}

/** What to write. */
export interface CosignSignatureOptions extends SignOptions {
  /** `http://host:port` of the registry. */
  readonly registryUrl: string;
  readonly repository: string;
  /** The image digest whose `.sig` manifest receives the layer. */
  readonly digest: string;
  /** The signer's private key. */
  readonly key: KeyObject;
  /** `critical.identity.docker-reference`; default `<identityHost>/<repository>` (cosign's simple identity). */
  readonly identity?: string;
  /** The host clients pull the image through (a proxy or mirror name); default the registry's own. */
  readonly identityHost?: string;
  /** Default-mode signature: `:tag` is appended to the identity. */
  readonly tag?: string;
  /** The digest the payload names; default `digest`. Another value forges a mismatch. */
  readonly payloadDigest?: string;
  /** Exact payload bytes to store (overrides identity, tag and payloadDigest). */
  readonly payload?: Buffer;
  /** Sign these bytes instead of the stored payload (a swapped payload). */
  readonly signedBytes?: Buffer;
  /** `append` (default) keeps existing layers, as cosign does; `replace` writes only this layer. */
  readonly mode?: 'append' | 'replace';
  /** Extra layer annotations (e.g. `dev.sigstore.cosign/certificate`). */
  readonly annotations?: Record<string, string>;
}

/** What was written. */
export interface WrittenSignature {
  readonly payload: Buffer;
  readonly payloadDigest: string;
  readonly layer: LayerDescriptor;
  readonly manifestDigest: string;
}

/** Writes one cosign signature layer for `digest`. */
export async function writeCosignSignature(options: CosignSignatureOptions): Promise<WrittenSignature> {
  const host = options.identityHost ?? new URL(options.registryUrl).host;
  const identity = `${options.identity ?? `${host}/${options.repository}`}${options.tag !== undefined ? `:${options.tag}` : ''}`;
  const payload = options.payload ?? cosignPayload(identity, options.payloadDigest ?? options.digest);
  const signature = cosignSign(options.key, options.signedBytes ?? payload, options);
  const payloadDigest = await putBlob(options.registryUrl, options.repository, payload);
  const layer = cosignLayer(payload, signature, options.annotations);
  const existing =
    options.mode === 'replace'
      ? []
      : await readSignatureLayers(options.registryUrl, options.repository, options.digest);
  const manifestDigest = await putSignatureManifest(options.registryUrl, options.repository, options.digest, [
    ...existing.filter(
      (l) =>
        l.digest !== layer.digest ||
        l.annotations?.[COSIGN_SIGNATURE_ANNOTATION] !== layer.annotations?.[COSIGN_SIGNATURE_ANNOTATION],
    ),
    layer,
  ]);
  return { payload, payloadDigest, layer, manifestDigest };
}

/**
 * Copies every signature layer of `fromDigest` into the `.sig` manifest of `toDigest` (same
 * repository, so the payload blobs are already there): a replay of another image's signatures.
 */
export async function copySignatureLayers(
  registryUrl: string,
  repository: string,
  fromDigest: string,
  toDigest: string,
  mode: 'append' | 'replace' = 'replace',
): Promise<void> {
  const layers = await readSignatureLayers(registryUrl, repository, fromDigest);
  const existing = mode === 'append' ? await readSignatureLayers(registryUrl, repository, toDigest) : [];
  await putSignatureManifest(registryUrl, repository, toDigest, [...existing, ...layers]);
}
