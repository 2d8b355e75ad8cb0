/**
 * The floors: what a signature append and a signature check cost with nothing but plain `fetch`
 * (undici, keep-alive, as Signet uses it) and `node:crypto`. No Signet code is imported here, so a
 * floor is exactly the registry requests and the crypto the job needs, and nothing else.
 *
 * Also the image pushes the benchmarks start from: minimal valid OCI images (one shared layer, a
 * distinct config blob per image) uploaded with direct blob and manifest requests, which is far
 * faster than skopeo for thousands of images.
 */
import { createHash, sign, verify, type KeyObject } from 'node:crypto';
import { gzipSync } from 'node:zlib';

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
const OCI_LAYER = 'application/vnd.oci.image.layer.v1.tar+gzip';
const SIMPLE_SIGNING = 'application/vnd.dev.cosign.simplesigning.v1+json';
const SIGNATURE_ANNOTATION = 'dev.cosignproject.cosign/signature';
const MANIFEST_ACCEPT = [
  OCI_MANIFEST,
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
].join(', ');

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
}

export const sha256 = (bytes: Buffer): string => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

async function expectStatus(res: Response, wanted: number, what: string): Promise<Buffer> {
  const body = Buffer.from(await res.arrayBuffer());
  if (res.status !== wanted)
    throw new Error(`${what}: HTTP ${res.status} ${body.toString('utf8').slice(0, 200)}`);
  return body;
}

/**
 * Uploads a blob monolithically (POST + PUT). With `checkFirst`, a HEAD comes first and an existing
 * blob is not uploaded again: what a client that cannot know whether the blob exists must do.
 */
export async function pushBlob(
  base: string,
  repository: string,
  bytes: Buffer,
  checkFirst: boolean,
): Promise<Descriptor> {
  const digest = sha256(bytes);
  if (checkFirst) {
    const head = await fetch(`${base}/v2/${repository}/blobs/${digest}`, { method: 'HEAD' });
    await head.arrayBuffer();
    if (head.ok) return { mediaType: '', digest, size: bytes.length };
    if (head.status !== 404) throw new Error(`HEAD blob ${digest}: HTTP ${head.status}`);
  }
  const start = await fetch(`${base}/v2/${repository}/blobs/uploads/`, {
    method: 'POST',
    headers: { 'content-length': '0' },
  });
  await expectStatus(start, 202, `POST upload ${repository}`);
  const url = new URL(start.headers.get('location') ?? '', base);
  url.searchParams.append('digest', digest);
  const put = await fetch(url, {
    method: 'PUT',
    headers: { 'content-type': 'application/octet-stream' },
    body: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength),
  });
  await expectStatus(put, 201, `PUT blob ${digest}`);
  return { mediaType: '', digest, size: bytes.length };
}

async function putManifest(
  base: string,
  repository: string,
  reference: string,
  bytes: Buffer,
): Promise<void> {
  const res = await fetch(`${base}/v2/${repository}/manifests/${reference}`, {
    method: 'PUT',
    headers: { 'content-type': OCI_MANIFEST },
    body: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength),
  });
  await expectStatus(res, 201, `PUT manifest ${repository}:${reference}`);
}

/** A tiny gzip layer (an empty tar archive) shared by every benchmark image of a repository. */
const LAYER_TAR = Buffer.alloc(1024);
const LAYER = gzipSync(LAYER_TAR);

/** Uploads the shared layer to `repository` once; returns its descriptor. */
export async function pushLayer(base: string, repository: string): Promise<Descriptor> {
  const layer = await pushBlob(base, repository, LAYER, true);
  return { ...layer, mediaType: OCI_LAYER };
}

/** Pushes one minimal image (a config blob unique to `seed`, the shared layer) as `repository:tag`; returns its digest. */
export async function pushImage(
  base: string,
  repository: string,
  tag: string,
  seed: string,
  layer: Descriptor,
): Promise<string> {
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: { Env: [`SIGNET_BENCH_SEED=${seed}`] },
      rootfs: { type: 'layers', diff_ids: [sha256(LAYER_TAR)] },
    }),
  );
  const configDescriptor = await pushBlob(base, repository, config, false);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { ...configDescriptor, mediaType: OCI_CONFIG },
      layers: [layer],
    }),
  );
  await putManifest(base, repository, tag, manifest);
  return sha256(manifest);
}

const signatureTag = (digest: string): string => `${digest.replace(':', '-')}.sig`;

/** A simple-signing payload of the same shape and size as Signet's default-mode payload. */
function payloadFor(registry: string, repository: string, digest: string, tag: string): Buffer {
  return Buffer.from(
    JSON.stringify({
      critical: {
        identity: { 'docker-reference': `${registry}/${repository}:${tag}` },
        image: { 'docker-manifest-digest': digest },
        type: 'cosign container image signature',
      },
      optional: {
        'dev.signet/key-id': `sha256:${'0'.repeat(64)}`,
        'dev.signet/rule': 'bench',
        'dev.signet/witness': 'bench-ec',
        tag,
      },
    }),
  );
}

/**
 * The floor of "sign, one push": append one ECDSA P-256 signature to a digest that has none. The
 * requests are the ones an append needs: read the `.sig` manifest (404), upload the payload and
 * the config blob (HEAD, POST, PUT each: a writer cannot know they are absent), write the
 * manifest, and read it back to check that no concurrent writer replaced it. 9 requests, 1 sign.
 */
export async function floorAppend(
  base: string,
  registry: string,
  repository: string,
  digest: string,
  tag: string,
  key: KeyObject,
): Promise<void> {
  const sigTag = signatureTag(digest);
  const current = await fetch(`${base}/v2/${repository}/manifests/${sigTag}`, {
    headers: { accept: MANIFEST_ACCEPT },
  });
  await expectStatus(current, 404, `GET ${sigTag}`);
  const payload = payloadFor(registry, repository, digest, tag);
  const signature = sign('sha256', payload, { key, dsaEncoding: 'der' });
  await pushBlob(base, repository, payload, true);
  const layer: Descriptor = {
    mediaType: SIMPLE_SIGNING,
    size: payload.length,
    digest: sha256(payload),
    annotations: { [SIGNATURE_ANNOTATION]: signature.toString('base64') },
  };
  const config = Buffer.from(
    JSON.stringify({
      architecture: '',
      created: '0001-01-01T00:00:00Z',
      history: [{ created: '0001-01-01T00:00:00Z' }],
      os: '',
      rootfs: { type: 'layers', diff_ids: [layer.digest] },
      config: {},
    }),
  );
  const configDescriptor = await pushBlob(base, repository, config, true);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { ...configDescriptor, mediaType: OCI_CONFIG },
      layers: [layer],
    }),
  );
  await putManifest(base, repository, sigTag, manifest);
  const after = await fetch(`${base}/v2/${repository}/manifests/${sigTag}`, {
    headers: { accept: MANIFEST_ACCEPT },
  });
  const written = JSON.parse((await expectStatus(after, 200, `GET ${sigTag}`)).toString('utf8')) as {
    layers: Descriptor[];
  };
  if (!written.layers.some((l) => l.digest === layer.digest))
    throw new Error(`${sigTag}: our layer is missing`);
}

/**
 * The floor of "verify, miss": resolve the tag (HEAD), read the `.sig` manifest, read the first
 * layer's payload, verify its ECDSA signature and check the payload names the digest. 3 requests,
 * 1 verify. Throws when the image is not validly signed.
 */
export async function floorVerify(
  base: string,
  repository: string,
  tag: string,
  publicKey: KeyObject,
): Promise<string> {
  const head = await fetch(`${base}/v2/${repository}/manifests/${tag}`, {
    method: 'HEAD',
    headers: { accept: MANIFEST_ACCEPT },
  });
  await expectStatus(head, 200, `HEAD ${repository}:${tag}`);
  const digest = head.headers.get('docker-content-digest') ?? '';
  const sig = await fetch(`${base}/v2/${repository}/manifests/${signatureTag(digest)}`, {
    headers: { accept: MANIFEST_ACCEPT },
  });
  const manifest = JSON.parse((await expectStatus(sig, 200, 'GET .sig')).toString('utf8')) as {
    layers: Descriptor[];
  };
  const layer = manifest.layers[0];
  if (layer === undefined) throw new Error(`${repository}@${digest}: no signature layer`);
  const blob = await fetch(`${base}/v2/${repository}/blobs/${layer.digest}`);
  const payload = await expectStatus(blob, 200, 'GET payload');
  if (sha256(payload) !== layer.digest) throw new Error('payload digest mismatch');
  const signature = Buffer.from(layer.annotations?.[SIGNATURE_ANNOTATION] ?? '', 'base64');
  if (!verify('sha256', payload, { key: publicKey, dsaEncoding: 'der' }, signature)) {
    throw new Error(`${repository}@${digest}: signature does not verify`);
  }
  const claims = JSON.parse(payload.toString('utf8')) as { critical: { image: Record<string, string> } };
  if (claims.critical.image['docker-manifest-digest'] !== digest)
    throw new Error('payload names another digest');
  return digest;
}
