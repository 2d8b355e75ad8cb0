/**
 * Plain `fetch` and node:crypto against a registry, no Signet code: push tiny images fast (blob
 * uploads and a manifest PUT, no skopeo), and read back every cosign signature of a digest,
 * checking it the way an independent verifier would.
 *
 *   const digest = await pushImageOverHttp(registry.url, 'team-a/app', 'v1', 'seed');
 *   const check = await checkSignatures(registry.url, 'team-a/app', digest, keys);
 *   check.problems        // [] when every layer, blob and signature is sound
 *   check.byWitness       // Map witness → number of valid signatures
 */
import { constants, createHash, verify, type KeyObject } from 'node:crypto';
import { gzipSync } from 'node:zlib';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
const OCI_LAYER = 'application/vnd.oci.image.layer.v1.tar+gzip';
const SIGNATURE_ANNOTATION = 'dev.cosignproject.cosign/signature';
const SIMPLE_SIGNING = 'application/vnd.dev.cosign.simplesigning.v1+json';

const sha256 = (bytes: Buffer): string => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

/** Uploads a blob (monolithic POST + PUT) unless the registry has it already. */
export async function pushBlobOverHttp(
  registryUrl: string,
  repository: string,
  bytes: Buffer,
): Promise<string> {
  const digest = sha256(bytes);
  const head = await fetch(`${registryUrl}/v2/${repository}/blobs/${digest}`, { method: 'HEAD' });
  if (head.ok) return digest;
  const start = await fetch(`${registryUrl}/v2/${repository}/blobs/uploads/`, { method: 'POST' });
  await start.arrayBuffer();
  const location = start.headers.get('location');
  if (start.status !== 202 || location === null) {
    throw new Error(`upload start for ${repository}: HTTP ${start.status}`);
  }
  const url = new URL(location, registryUrl);
  url.searchParams.set('digest', digest);
  const put = await fetch(url, {
    method: 'PUT',
    headers: { 'content-type': 'application/octet-stream' },
    body: new Uint8Array(bytes),
  });
  await put.arrayBuffer();
  if (put.status !== 201) throw new Error(`upload of ${repository}@${digest}: HTTP ${put.status}`);
  return digest;
}

/**
 * Pushes a one-layer OCI image whose config holds `seed` (so every seed gives another digest) and
 * tags it; returns the manifest digest.
 */
export async function pushImageOverHttp(
  registryUrl: string,
  repository: string,
  tag: string,
  seed: string,
): Promise<string> {
  const layer = gzipSync(Buffer.from(`signet reliability layer ${repository}\n`), { level: 1 });
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: { Env: [`SIGNET_TEST_SEED=${seed}`] },
      rootfs: { type: 'layers', diff_ids: [sha256(layer)] },
    }),
  );
  const [layerDigest, configDigest] = await Promise.all([
    pushBlobOverHttp(registryUrl, repository, layer),
    pushBlobOverHttp(registryUrl, repository, config),
  ]);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: OCI_CONFIG, digest: configDigest, size: config.length },
      layers: [{ mediaType: OCI_LAYER, digest: layerDigest, size: layer.length }],
    }),
  );
  const res = await fetch(`${registryUrl}/v2/${repository}/manifests/${tag}`, {
    method: 'PUT',
    headers: { 'content-type': OCI_MANIFEST },
    body: new Uint8Array(manifest),
  });
  await res.arrayBuffer();
  if (res.status !== 201) throw new Error(`manifest PUT ${repository}:${tag}: HTTP ${res.status}`);
  return sha256(manifest);
}

/**
 * Copies a manifest byte for byte, with its config and layer blobs, from one repository (or
 * registry) to another: the digest stays the same, as replication and `cosign copy` keep it.
 */
export async function copyOverHttp(
  from: { readonly url: string; readonly repository: string; readonly reference: string },
  to: { readonly url: string; readonly repository: string; readonly reference: string },
): Promise<string> {
  const res = await fetch(`${from.url}/v2/${from.repository}/manifests/${from.reference}`, {
    headers: { accept: OCI_MANIFEST },
  });
  if (res.status !== 200) throw new Error(`GET ${from.repository}:${from.reference}: HTTP ${res.status}`);
  const bytes = Buffer.from(await res.arrayBuffer());
  const mediaType = res.headers.get('content-type') ?? OCI_MANIFEST;
  const manifest = JSON.parse(bytes.toString('utf8')) as {
    config?: { digest: string };
    layers?: { digest: string }[];
  };
  for (const { digest } of [...(manifest.config ? [manifest.config] : []), ...(manifest.layers ?? [])]) {
    const blob = await fetch(`${from.url}/v2/${from.repository}/blobs/${digest}`);
    if (blob.status !== 200) throw new Error(`GET blob ${digest}: HTTP ${blob.status}`);
    await pushBlobOverHttp(to.url, to.repository, Buffer.from(await blob.arrayBuffer()));
  }
  const put = await fetch(`${to.url}/v2/${to.repository}/manifests/${to.reference}`, {
    method: 'PUT',
    headers: { 'content-type': mediaType },
    body: new Uint8Array(bytes),
  });
  await put.arrayBuffer();
  if (put.status !== 201)
    throw new Error(`manifest PUT ${to.repository}:${to.reference}: HTTP ${put.status}`);
  return sha256(bytes);
}

/** A key an independent verifier trusts, and how its signatures are made. */
export interface TrustedKey {
  readonly witness: string;
  readonly publicKey: KeyObject;
  readonly algorithm: 'RSASSA_PKCS1_V1_5_SHA_256' | 'RSASSA_PSS_SHA_256' | 'ECDSA_SHA_256' | 'ECDSA_SHA_384';
}

/** Verifies a cosign signature with node:crypto, as cosign (or KMS) makes them. */
export function verifiesWith(key: TrustedKey, payload: Buffer, signature: Buffer): boolean {
  try {
    return verifyAs(key, payload, signature);
  } catch {
    // A key of another type than the signature's (padding options on an EC key, say).
    return false;
  }
}

function verifyAs(key: TrustedKey, payload: Buffer, signature: Buffer): boolean {
  switch (key.algorithm) {
    case 'RSASSA_PKCS1_V1_5_SHA_256':
      return verify(
        'sha256',
        payload,
        { key: key.publicKey, padding: constants.RSA_PKCS1_PADDING },
        signature,
      );
    case 'RSASSA_PSS_SHA_256':
      return verify(
        'sha256',
        payload,
        { key: key.publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 },
        signature,
      );
    case 'ECDSA_SHA_256':
      return verify('sha256', payload, key.publicKey, signature);
    case 'ECDSA_SHA_384':
      return verify('sha384', payload, key.publicKey, signature);
  }
}

/** What an independent check of one digest's `.sig` manifest found. */
export interface SignatureCheck {
  /** False when there is no `.sig` manifest at all. */
  readonly exists: boolean;
  readonly layers: number;
  /** Valid signatures for this digest, by the witness whose key verifies them. */
  readonly byWitness: ReadonlyMap<string, number>;
  /** Everything wrong: unparseable manifest, missing blobs, payloads for other digests, bad signatures. */
  readonly problems: readonly string[];
}

/**
 * Reads `<repository>:sha256-<hex>.sig` and checks everything in it: the manifest parses, its
 * config blob exists, every layer's payload blob exists and hashes to the layer digest, names
 * `digest`, and carries a signature that one of `keys` verifies.
 */
export async function checkSignatures(
  registryUrl: string,
  repository: string,
  digest: string,
  keys: readonly TrustedKey[],
): Promise<SignatureCheck> {
  const tag = `${digest.replace(':', '-')}.sig`;
  const problems: string[] = [];
  const byWitness = new Map<string, number>();
  const res = await fetch(`${registryUrl}/v2/${repository}/manifests/${tag}`, {
    headers: { accept: OCI_MANIFEST },
  });
  if (res.status === 404) {
    await res.arrayBuffer();
    return { exists: false, layers: 0, byWitness, problems };
  }
  if (res.status !== 200) throw new Error(`GET ${repository}:${tag}: HTTP ${res.status}`);
  let manifest: {
    config?: { digest?: string };
    layers?: { mediaType?: string; digest?: string; annotations?: Record<string, string> }[];
  };
  try {
    manifest = JSON.parse(Buffer.from(await res.arrayBuffer()).toString('utf8'));
  } catch {
    return { exists: true, layers: 0, byWitness, problems: [`${tag}: manifest is not JSON`] };
  }
  const layers = manifest.layers ?? [];
  if (!Array.isArray(layers)) return { exists: true, layers: 0, byWitness, problems: [`${tag}: no layers`] };
  const blob = async (blobDigest: string | undefined): Promise<Buffer | undefined> => {
    if (blobDigest === undefined) return undefined;
    const answer = await fetch(`${registryUrl}/v2/${repository}/blobs/${blobDigest}`);
    const bytes = Buffer.from(await answer.arrayBuffer());
    if (answer.status !== 200) return undefined;
    return sha256(bytes) === blobDigest ? bytes : undefined;
  };
  if ((await blob(manifest.config?.digest)) === undefined) problems.push(`${tag}: config blob missing`);
  await Promise.all(
    layers.map(async (layer, index) => {
      const where = `${tag} layer ${index}`;
      if (layer.mediaType !== SIMPLE_SIGNING)
        problems.push(`${where}: media type ${String(layer.mediaType)}`);
      const payload = await blob(layer.digest);
      if (payload === undefined) {
        problems.push(`${where}: payload blob missing or corrupt`);
        return;
      }
      let named: unknown;
      try {
        named = JSON.parse(payload.toString('utf8'))?.critical?.image?.['docker-manifest-digest'];
      } catch {
        named = undefined;
      }
      if (named !== digest) problems.push(`${where}: payload names ${String(named)}`);
      const signature = Buffer.from(layer.annotations?.[SIGNATURE_ANNOTATION] ?? '', 'base64');
      const signer = keys.find((key) => signature.length > 0 && verifiesWith(key, payload, signature));
      if (signer === undefined) {
        problems.push(`${where}: no trusted key verifies its signature`);
        return;
      }
      byWitness.set(signer.witness, (byWitness.get(signer.witness) ?? 0) + 1);
    }),
  );
  return { exists: true, layers: layers.length, byWitness, problems };
}
