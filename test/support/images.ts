/**
 * Tiny real images built locally (no network): OCI image layouts on disk, pushed with skopeo.
 *
 *   const digest = await makeImage(dir, { seed: 'a' });                 // one image, tag `latest`
 *   const { digest, children } = await makeMultiArchImage(dir2);        // OCI index, amd64 + arm64
 *   await skopeoCopy(dir, `${registry.host}/team-a/app:v1`);            // returns the pushed digest
 *
 * The same seed gives the same bytes, hence the same digests; without a seed every image differs.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { MEDIA_TYPES, type Descriptor } from '../../lib/registry/types';

/** How `makeImage` builds its image. */
export interface MakeImageOptions {
  /** Same seed, same bytes; default random. */
  readonly seed?: string;
  /** Number of layers; default 1. */
  readonly layers?: number;
  /** The layout's tag (`org.opencontainers.image.ref.name`); default `latest`. */
  readonly tag?: string;
}

/** What `makeMultiArchImage` wrote. */
export interface MultiArchImage {
  /** The digest of the OCI index. */
  readonly digest: string;
  /** The platform manifests, amd64 then arm64. */
  readonly children: readonly { readonly digest: string; readonly architecture: string }[];
}

const DEFAULT_TAG = 'latest';
const REF_NAME = 'org.opencontainers.image.ref.name';
const LAYER_MEDIA_TYPE = 'application/vnd.oci.image.layer.v1.tar+gzip';

/** Writes an OCI image layout with one small image into `dir`; returns the manifest digest. */
export async function makeImage(dir: string, opts: MakeImageOptions = {}): Promise<string> {
  const seed = opts.seed ?? randomBytes(8).toString('hex');
  const manifest = await writeImage(dir, seed, opts.layers ?? 1, 'amd64');
  await writeIndex(dir, manifest, opts.tag ?? DEFAULT_TAG);
  return manifest.digest;
}

/** Writes an OCI image layout whose tag points at an OCI index of a linux/amd64 and a linux/arm64 image. */
export async function makeMultiArchImage(
  dir: string,
  opts: Pick<MakeImageOptions, 'seed' | 'tag'> = {},
): Promise<MultiArchImage> {
  const seed = opts.seed ?? randomBytes(8).toString('hex');
  const children: Descriptor[] = [];
  for (const architecture of ['amd64', 'arm64']) {
    children.push(await writeImage(dir, `${seed}/${architecture}`, 1, architecture));
  }
  const index = await writeBlob(
    dir,
    MEDIA_TYPES.ociIndex,
    JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPES.ociIndex, manifests: children }),
  );
  await writeIndex(dir, index, opts.tag ?? DEFAULT_TAG);
  return {
    digest: index.digest,
    children: children.map((c) => ({ digest: c.digest, architecture: String(c.platform?.['architecture']) })),
  };
}

/** How `skopeoCopy` pushes. */
export interface SkopeoCopyOptions {
  /** The layout tag to copy; default `latest`. */
  readonly tag?: string;
  /** `--dest-creds`. */
  readonly creds?: { readonly username: string; readonly password: string };
}

const run = promisify(execFile);

/**
 * `skopeo copy --all --preserve-digests oci:<layoutDir>:<tag> docker://<destRef>` to a plain-HTTP
 * registry (`destRef` like `127.0.0.1:5000/team-a/app:v1`); returns the pushed manifest digest.
 */
export async function skopeoCopy(
  layoutDir: string,
  destRef: string,
  opts: SkopeoCopyOptions = {},
): Promise<string> {
  const scratch = await mkdtemp(join(tmpdir(), 'signet-skopeo-'));
  try {
    const digestFile = join(scratch, 'digest');
    const args = [
      // Tests must not depend on the machine's /etc/containers/policy.json.
      '--insecure-policy',
      'copy',
      '--quiet',
      '--all',
      '--preserve-digests',
      '--dest-tls-verify=false',
      '--digestfile',
      digestFile,
      ...(opts.creds ? ['--dest-creds', `${opts.creds.username}:${opts.creds.password}`] : []),
      `oci:${layoutDir}:${opts.tag ?? DEFAULT_TAG}`,
      `docker://${destRef}`,
    ];
    try {
      await run('skopeo', args, {
        env: { ...process.env, REGISTRY_AUTH_FILE: join(scratch, 'auth.json') },
        timeout: 60_000,
      });
    } catch (err) {
      const stderr = (err as { stderr?: string }).stderr ?? '';
      throw new Error(
        `skopeo copy to ${destRef} failed (apt-get install -y skopeo?): ${stderr || String(err)}`,
        {
          cause: err,
        },
      );
    }
    return (await readFile(digestFile, 'utf8')).trim();
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

/** Writes one image's layers, config and manifest; returns the manifest's descriptor. */
async function writeImage(
  dir: string,
  seed: string,
  layers: number,
  architecture: string,
): Promise<Descriptor> {
  const layerDescriptors: Descriptor[] = [];
  const diffIds: string[] = [];
  for (let n = 0; n < layers; n++) {
    const tar = tarOf(`layer-${n}.txt`, bytesFrom(`${seed}/layer-${n}`, 64));
    diffIds.push(sha256(tar));
    layerDescriptors.push(await writeBlob(dir, LAYER_MEDIA_TYPE, gzipSync(tar)));
  }
  const config = await writeBlob(
    dir,
    MEDIA_TYPES.ociConfig,
    JSON.stringify({
      architecture,
      os: 'linux',
      config: { Env: [`SIGNET_TEST_SEED=${seed}`] },
      rootfs: { type: 'layers', diff_ids: diffIds },
      history: diffIds.map(() => ({ created_by: 'signet test/support/images.ts' })),
    }),
  );
  const manifest = await writeBlob(
    dir,
    MEDIA_TYPES.ociManifest,
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.ociManifest,
      config,
      layers: layerDescriptors,
    }),
  );
  return { ...manifest, platform: { architecture, os: 'linux' } };
}

async function writeBlob(dir: string, mediaType: string, content: Buffer | string): Promise<Descriptor> {
  const bytes = Buffer.from(content);
  const digest = sha256(bytes);
  await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
  await writeFile(join(dir, 'blobs', 'sha256', digest.slice('sha256:'.length)), bytes);
  return { mediaType, digest, size: bytes.length };
}

async function writeIndex(dir: string, top: Descriptor, tag: string): Promise<void> {
  await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  const { platform: _platform, ...descriptor } = top;
  await writeFile(
    join(dir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.ociIndex,
      manifests: [{ ...descriptor, annotations: { [REF_NAME]: tag } }],
    }),
  );
}

const sha256 = (bytes: Buffer): string => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

/** `length` pseudo-random bytes determined by `seed`. */
function bytesFrom(seed: string, length: number): Buffer {
  const blocks: Buffer[] = [];
  for (let i = 0; blocks.length * 32 < length; i++)
    blocks.push(createHash('sha256').update(`${seed}#${i}`).digest());
  return Buffer.concat(blocks).subarray(0, length);
}

/** A POSIX ustar archive holding one regular file. */
function tarOf(name: string, content: Buffer): Buffer {
  const header = Buffer.alloc(512);
  const field = (offset: number, length: number, value: string): void => {
    header.write(value, offset, length, 'ascii');
  };
  const octal = (value: number, length: number): string => `${value.toString(8).padStart(length - 1, '0')}\0`;
  field(0, 100, name);
  field(100, 8, octal(0o644, 8));
  field(108, 8, octal(0, 8));
  field(116, 8, octal(0, 8));
  field(124, 12, octal(content.length, 12));
  field(136, 12, octal(0, 12));
  field(148, 8, '        ');
  field(156, 1, '0');
  field(257, 6, 'ustar\0');
  field(263, 2, '00');
  let checksum = 0;
  for (const byte of header) checksum += byte;
  field(148, 8, `${checksum.toString(8).padStart(6, '0')}\0 `);
  const padding = Buffer.alloc((512 - (content.length % 512)) % 512);
  return Buffer.concat([header, content, padding, Buffer.alloc(1024)]);
}
