/**
 * Verification against a hostile registry: a node:http server started here that speaks just
 * enough of the distribution API (GET manifests, GET blobs, the referrers API as 404) to lure
 * Signet's local service, configured in `registries[]` with `insecure: true` and covered by an
 * enabled policy. Every answer is the test's: endless blob bodies, `.sig` manifests with
 * thousands of layers or padded to be large, or no answer at all.
 *
 * Each review is bounded by what descriptors declare, by `admission.maxSignatures`, by the
 * review's byte budget (`admission.maxReviewBytes`) and by its deadline (`admission.deadlineSeconds`),
 * on `/admission` and `/verify` alike; the process's memory stays flat; and the answer is a
 * denial (fail closed) that says why.
 */
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startService, type RunningService } from '../../cli/serve';
import { parseConfig } from '../../lib/config/load';
import { silentLogger } from '../../lib/core/logger';
import { fixture } from '../admission/fixtures';
import {
  cosignConfig,
  cosignManifest,
  cosignPayload,
  cosignSign,
  type LayerDescriptor,
} from '../support/cosign-writer';
import { startHostileServer, streamEndlessly, type HostileServer } from '../support/hostile-server';
import { MB, startRssSampler } from '../support/rss';

jest.setTimeout(120_000);

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- JSON answers of several shapes
type Json = any;

const KiB = 1024;
const MiB = 1024 * KiB;
const SIMPLE_SIGNING = 'application/vnd.dev.cosign.simplesigning.v1+json';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const CHUNK = Buffer.alloc(16 * KiB, 0x7b);
const sha256 = (bytes: Buffer | string): string =>
  `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
/** A signer nobody trusts: its signatures are well-formed and valid, for a key no witness holds. */
const stranger = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;

/** The manifests the hostile registry serves, by `<repository>/<reference>`; blobs by digest. */
const manifests = new Map<string, Buffer>();
const blobs = new Map<string, Buffer>();
/** Bytes each endless blob answer got onto the wire before the client hung up, by repository. */
const endless: { readonly repository: string; readonly sent: Promise<number> }[] = [];
let registry: HostileServer;

/**
 * `/v2/<name>/manifests/<ref>`, `/v2/<name>/blobs/<digest>`, `/v2/<name>/referrers/<digest>`.
 * Repositories under `stall/` are never answered; blobs under `endless/` never end.
 */
function hostileRegistry(req: IncomingMessage, res: ServerResponse): void {
  const path = req.url ?? '/';
  const match = /^\/v2\/(.+)\/(manifests|blobs|referrers)\/([^/]+)$/.exec(path);
  if (path === '/v2/' || path === '/v2') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{}');
    return;
  }
  if (match === null) return notFound(res);
  const [, repository = '', kind, reference = ''] = match;
  if (repository.startsWith('stall/')) return; // hangs until the client gives up
  if (kind === 'manifests') {
    const manifest = manifests.get(`${repository}/${reference}`);
    if (manifest === undefined) return notFound(res);
    res.writeHead(200, {
      'content-type': OCI_MANIFEST,
      'content-length': String(manifest.length),
      'docker-content-digest': sha256(manifest),
    });
    res.end(req.method === 'HEAD' ? undefined : manifest);
    return;
  }
  if (kind === 'blobs') {
    if (repository.startsWith('endless/')) {
      // Chunked, no Content-Length: only the reader can end it.
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      endless.push({ repository, sent: streamEndlessly(res, CHUNK) });
      return;
    }
    const blob = blobs.get(reference);
    if (blob === undefined) return notFound(res);
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(blob.length) });
    res.end(blob);
    return;
  }
  return notFound(res);
}

function notFound(res: ServerResponse): void {
  const body = JSON.stringify({ errors: [{ code: 'MANIFEST_UNKNOWN', message: 'not here' }] });
  res.writeHead(404, {
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(body)),
  });
  res.end(body);
}

/** Stores a `.sig` manifest with these layers for `repository@digest`. */
function storeSignatures(repository: string, digest: string, layers: readonly LayerDescriptor[]): Buffer {
  const manifest = cosignManifest(layers, cosignConfig(layers.slice(0, 1)));
  manifests.set(`${repository}/${digest.replace(':', '-')}.sig`, manifest);
  return manifest;
}

/** A layer that declares a payload of `size` bytes and carries a well-formed, valid (stranger's) signature. */
function declaredLayer(size: number, annotations: Record<string, string> = {}): LayerDescriptor {
  const payload = randomBytes(size);
  return {
    mediaType: SIMPLE_SIGNING,
    size,
    digest: sha256(payload),
    annotations: {
      ...annotations,
      'dev.cosignproject.cosign/signature': cosignSign(stranger, payload).toString('base64'),
    },
  };
}

const randomDigest = (): string => sha256(randomBytes(32));

function podReview(images: readonly string[]): Json {
  const review = fixture('pod-create');
  review.request.object.spec.containers = images.map((image, i) => ({ name: `c${i}`, image }));
  review.request.object.spec.initContainers = [];
  return review;
}

async function post(url: string, body: unknown): Promise<{ status: number; json: Json; ms: number }> {
  const started = Date.now();
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, json: await res.json(), ms: Date.now() - started };
}

const dirs: string[] = [];

/** The local service with one policy requiring witness `release` on every image of the hostile registry. */
async function startVerifyingService(admission: string): Promise<RunningService> {
  const dir = await mkdtemp(join(tmpdir(), 'signet-hostile-registry-'));
  dirs.push(dir);
  const yaml = `
registries:
  - host: ${registry.host}
    insecure: true
witnesses:
  - name: release
    key: file://keys/release.pem
policies:
  - name: hostile
    enabled: true
    images: ["${registry.host}/**"]
    attestors:
      - witnesses: [release]
admission:
${admission}
`;
  const config = parseConfig(yaml, { baseDir: dir, source: join(dir, 'signet.yaml') });
  return startService(config, { logger: silentLogger, port: 0 });
}

beforeAll(async () => {
  registry = await startHostileServer(hostileRegistry);
});

afterAll(async () => {
  await registry?.close();
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

describe('with the default bounds (deadline 5 s, budget 8 MiB, 64 signatures)', () => {
  let service: RunningService;

  beforeAll(async () => {
    service = await startVerifyingService('  deadlineSeconds: 5');
  });

  afterAll(() => service?.stop());

  describe('when a Pod of 16 images has .sig manifests of 20 layers whose blobs never end', () => {
    const images: string[] = [];
    let answer: Awaited<ReturnType<typeof post>>;
    let memory: { idle: number; peak: number; last: number };

    beforeAll(async () => {
      for (let i = 0; i < 16; i++) {
        const repository = `endless/app-${i}`;
        const digest = randomDigest();
        storeSignatures(
          repository,
          digest,
          Array.from({ length: 20 }, () => declaredLayer(300)),
        );
        images.push(`${registry.host}/${repository}@${digest}`);
      }
      // Warm up first: the first review loads and compiles the code every later one runs.
      const warmup = 'endless/warmup';
      const warmupDigest = randomDigest();
      storeSignatures(warmup, warmupDigest, [declaredLayer(300)]);
      await post(`${service.url}/admission`, podReview([`${registry.host}/${warmup}@${warmupDigest}`]));
      const sampler = startRssSampler(50);
      answer = await post(`${service.url}/admission`, podReview(images));
      memory = sampler.stop();
    });

    it('denies the Pod (fail closed), naming the images in a bounded message', () => {
      expect(answer.status).toBe(200);
      expect(answer.json.response.allowed).toBe(false);
      const message: string = answer.json.response.status.message;
      // Sixteen detailed denials do not fit in 4096 characters: every image is still named, with
      // its reason code (the details are in the log and in POST /verify).
      // (detailed `image <ref> ...` when they fit, `<ref>: CODE` when they do not).
      images.forEach((image, i) => {
        const named = [
          `spec.containers[${i}].image: ${image}: `,
          `spec.containers[${i}].image: image ${image}`,
        ];
        expect(named.some((n) => message.includes(n))).toBe(true);
      });
      expect(message.length).toBeLessThanOrEqual(4096);
    });

    it('answers within the deadline', () => {
      expect(answer.ms).toBeLessThan(5_000 + 2_000);
    });

    it('keeps the process within 100 MB of its idle memory', () => {
      expect((memory.peak - memory.idle) / MB).toBeLessThan(100);
    });

    it('cut every blob body short: the registry got little of each onto the wire', async () => {
      const sent = await Promise.all(
        endless.filter((e) => e.repository.startsWith('endless/app-')).map((e) => e.sent),
      );
      expect(sent.length).toBeGreaterThan(0);
      expect(sent.length).toBeLessThanOrEqual(16 * 20);
      for (const bytes of sent) expect(bytes).toBeLessThan(1 * MiB);
      expect(sent.reduce((a, b) => a + b, 0)).toBeLessThan(64 * MiB);
    });
  });

  describe('when a .sig manifest holds 2,000 signatures and none of the first 64 is the witness’s', () => {
    let image: string;
    let repository: string;

    beforeAll(() => {
      repository = 'many/app';
      const digest = randomDigest();
      const layers = Array.from({ length: 2000 }, (_, i) => {
        const payload = cosignPayload(`${registry.host}/${repository}`, digest, { n: String(i) });
        blobs.set(sha256(payload), payload);
        return {
          mediaType: SIMPLE_SIGNING,
          size: payload.length,
          digest: sha256(payload),
          annotations: {
            'dev.cosignproject.cosign/signature': cosignSign(stranger, payload).toString('base64'),
          },
        };
      });
      storeSignatures(repository, digest, layers);
      image = `${registry.host}/${repository}@${digest}`;
    });

    it('denies with TOO_MANY_SIGNATURES after reading at most 64 payloads', async () => {
      const before = registry.requests.filter((r) => r.path.startsWith(`/v2/${repository}/blobs/`)).length;
      const { status, json } = await post(`${service.url}/verify`, { image });
      expect(status).toBe(200);
      expect(json).toMatchObject({
        allowed: false,
        reason: { code: 'TOO_MANY_SIGNATURES', unread: 2000 - 64 },
      });
      const read =
        registry.requests.filter((r) => r.path.startsWith(`/v2/${repository}/blobs/`)).length - before;
      expect(read).toBeLessThanOrEqual(64);
    });

    it('denies the Pod through /admission too', async () => {
      const { json } = await post(`${service.url}/admission`, podReview([image]));
      expect(json.response.allowed).toBe(false);
      expect(json.response.status.message).toContain(image);
    });
  });
});

describe('with a 2 s deadline and a 64 KiB review budget', () => {
  let service: RunningService;

  beforeAll(async () => {
    service = await startVerifyingService('  deadlineSeconds: 2\n  maxReviewBytes: 65536');
  });

  afterAll(() => service?.stop());

  describe('when the registry never answers', () => {
    const image = (): string => `${registry.host}/stall/app@${randomDigest()}`;

    it('denies an AdmissionReview at the deadline', async () => {
      const { status, json, ms } = await post(`${service.url}/admission`, podReview([image(), image()]));
      expect(status).toBe(200);
      expect(json.response.allowed).toBe(false);
      expect(ms).toBeLessThan(2_000 + 2_000);
    });

    it('denies /verify with DEADLINE_EXCEEDED at the deadline', async () => {
      const { status, json, ms } = await post(`${service.url}/verify`, { image: image() });
      expect(status).toBe(200);
      expect(json).toMatchObject({ allowed: false, reason: { code: 'DEADLINE_EXCEEDED' } });
      expect(ms).toBeLessThan(2_000 + 2_000);
    });
  });

  describe('when the registry serves many large .sig manifests', () => {
    const images: string[] = [];

    beforeAll(() => {
      // Eight manifests of ~40 KiB: each fits the budget alone, together they pass it.
      for (let i = 0; i < 8; i++) {
        const repository = `large/app-${i}`;
        const digest = randomDigest();
        storeSignatures(repository, digest, [
          declaredLayer(300, { 'dev.example/padding': 'x'.repeat(40 * KiB) }),
        ]);
        images.push(`${registry.host}/${repository}@${digest}`);
      }
    });

    it('denies the Pod, some images with REVIEW_TOO_LARGE', async () => {
      const { status, json } = await post(`${service.url}/admission`, podReview(images));
      expect(status).toBe(200);
      expect(json.response.allowed).toBe(false);
      for (const image of images) expect(json.response.status.message).toContain(image);

      // The same review in-process, for the reason codes.
      const bounds = service.signet.verifier.reviewBounds();
      try {
        const decisions = await service.signet.verifier.verifyAll(
          images.map((image, i) => ({ image, field: `spec.containers[${i}].image` })),
          { namespace: 'production' },
          bounds,
        );
        const codes = [...decisions.values()].map((d) => d.reason?.code);
        expect(codes.every((code) => code !== undefined)).toBe(true);
        expect(codes).toContain('REVIEW_TOO_LARGE');
      } finally {
        bounds.dispose();
      }
    });

    it('denies one manifest larger than the whole budget on /verify', async () => {
      const repository = 'large/huge';
      const digest = randomDigest();
      storeSignatures(repository, digest, [
        declaredLayer(300, { 'dev.example/padding': 'x'.repeat(256 * KiB) }),
      ]);
      const { json } = await post(`${service.url}/verify`, {
        image: `${registry.host}/${repository}@${digest}`,
      });
      expect(json).toMatchObject({ allowed: false, reason: { code: 'REVIEW_TOO_LARGE' } });
    });
  });
});
