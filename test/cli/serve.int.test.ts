/**
 * End to end on the real registry: Signet's local service starts the distribution registry with
 * notifications pointed back at itself; images pushed with skopeo get signed. Signatures are
 * checked with plain fetch + node:crypto only, never with Signet's own verification code.
 */
import {
  createHash,
  createPublicKey,
  generateKeyPairSync,
  verify,
  constants,
  type KeyObject,
} from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../../lib/config/load';
import { silentLogger } from '../../lib/core/logger';
import { startService, type RunningService } from '../../cli/serve';
import { freePort } from '../support/ports';
import { makeImage, skopeoCopy } from '../support/images';
import { writeCosignSignature } from '../support/cosign-writer';

let dir: string;
let running: RunningService;
let registryUrl: string;
let host: string;

function configYaml(registryHost: string): string {
  return `
registries:
  - host: ${registryHost}
    embedded: true
    insecure: true
witnesses:
  - name: release
    key: file://keys/release.pem
  - name: release-ec
    key: file://keys/release-ec.pem
  - name: pss
    key: file://keys/pss.pem
signingRules:
  - name: team-a
    namespaces: [team-a]
    witness: release
    algorithm: RSA_PKCS1_SHA_256
    signatureType: default
  - name: team-b
    repositories: ["team-b/*"]
    witness: release-ec
    algorithm: ECDSA_SHA_256
    signatureType: simple
  - name: team-c-pss
    namespaces: [team-c]
    witness: pss
    algorithm: RSA_PSS_SHA_256
    signatureType: default
  - name: multi-1
    namespaces: [multi]
    witness: release
    algorithm: RSA_PKCS1_SHA_256
    signatureType: simple
  - name: multi-2
    namespaces: [multi]
    witness: release-ec
    algorithm: ECDSA_SHA_256
    signatureType: simple
  - name: multi-3
    namespaces: [multi]
    witness: pss
    algorithm: RSA_PSS_SHA_256
    signatureType: default
  - name: manual-only
    namespaces: [manual]
    witness: release
    algorithm: RSA_PKCS1_SHA_256
    trigger: manual
`;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'signet-serve-'));
  host = `127.0.0.1:${await freePort()}`;
  const config = parseConfig(configYaml(host), { baseDir: dir, source: join(dir, 'signet.yaml') });
  running = await startService(config, { logger: silentLogger, port: 0 });
  registryUrl = `http://${host}`;
});

afterAll(async () => {
  await running?.stop();
  await rm(dir, { recursive: true, force: true });
});

async function publicKey(name: string): Promise<KeyObject> {
  return createPublicKey(await readFile(join(dir, 'keys', `${name}.pem`)));
}

interface SigLayer {
  digest: string;
  annotations: Record<string, string>;
}

async function sigManifest(repository: string, digest: string): Promise<{ layers: SigLayer[] } | undefined> {
  const res = await fetch(`${registryUrl}/v2/${repository}/manifests/${digest.replace(':', '-')}.sig`, {
    headers: { accept: 'application/vnd.oci.image.manifest.v1+json' },
  });
  if (res.status === 404) return undefined;
  expect(res.status).toBe(200);
  return (await res.json()) as { layers: SigLayer[] };
}

async function waitForLayers(repository: string, digest: string, count: number): Promise<SigLayer[]> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const manifest = await sigManifest(repository, digest);
    if (manifest !== undefined && manifest.layers.length >= count) return manifest.layers;
    if (Date.now() > deadline)
      throw new Error(`${repository}@${digest}: ${manifest?.layers.length ?? 0} layers, wanted ${count}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function blob(repository: string, digest: string): Promise<Buffer> {
  const res = await fetch(`${registryUrl}/v2/${repository}/blobs/${digest}`);
  expect(res.status).toBe(200);
  const bytes = Buffer.from(await res.arrayBuffer());
  expect(`sha256:${createHash('sha256').update(bytes).digest('hex')}`).toBe(digest);
  return bytes;
}

async function push(repository: string, tag: string, seed: string): Promise<string> {
  const layout = join(dir, `layout-${seed}`);
  await makeImage(layout, { seed });
  return skopeoCopy(layout, `${host}/${repository}:${tag}`);
}

describe('when images are pushed into covered and uncovered namespaces', () => {
  let digests: Record<string, string>;

  beforeAll(async () => {
    digests = {
      a: await push('team-a/app', 'v1', 'a'),
      b: await push('team-b/api', 'v2', 'b'),
      c: await push('team-c/job', 'v3', 'c'),
      none: await push('other/app', 'v1', 'none'),
    };
  });

  it('signs team-a with RSA PKCS1 in default mode (identity repository:tag, tag in optional)', async () => {
    const [layer] = await waitForLayers('team-a/app', digests.a as string, 1);
    const payload = await blob('team-a/app', layer!.digest);
    const signature = Buffer.from(layer!.annotations['dev.cosignproject.cosign/signature']!, 'base64');
    expect(
      verify(
        'sha256',
        payload,
        { key: await publicKey('release'), padding: constants.RSA_PKCS1_PADDING },
        signature,
      ),
    ).toBe(true);
    const json = JSON.parse(payload.toString());
    expect(json.critical).toEqual({
      identity: { 'docker-reference': `${host}/team-a/app:v1` },
      image: { 'docker-manifest-digest': digests.a },
      type: 'cosign container image signature',
    });
    expect(json.optional.tag).toBe('v1');
  });

  it('signs team-b with ECDSA P-256 in simple mode (identity = repository)', async () => {
    const [layer] = await waitForLayers('team-b/api', digests.b as string, 1);
    const payload = await blob('team-b/api', layer!.digest);
    const signature = Buffer.from(layer!.annotations['dev.cosignproject.cosign/signature']!, 'base64');
    expect(verify('sha256', payload, await publicKey('release-ec'), signature)).toBe(true);
    const json = JSON.parse(payload.toString());
    expect(json.critical.identity['docker-reference']).toBe(`${host}/team-b/api`);
    expect(json.optional?.tag).toBeUndefined();
  });

  it('signs team-c with RSA-PSS (salt length = hash length, as KMS writes it)', async () => {
    const [layer] = await waitForLayers('team-c/job', digests.c as string, 1);
    const payload = await blob('team-c/job', layer!.digest);
    const signature = Buffer.from(layer!.annotations['dev.cosignproject.cosign/signature']!, 'base64');
    const key = { key: await publicKey('pss'), padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 };
    expect(verify('sha256', payload, key, signature)).toBe(true);
  });

  it('writes nothing for a repository no rule covers', async () => {
    // The covered pushes above were signed, so the notifications have been processed by now.
    await waitForLayers('team-c/job', digests.c as string, 1);
    expect(await sigManifest('other/app', digests.none as string)).toBeUndefined();
  });

  it('signs a new tag of an already-signed digest again in default mode', async () => {
    await waitForLayers('team-a/app', digests.a as string, 1);
    const layout = join(dir, 'layout-a');
    await skopeoCopy(layout, `${host}/team-a/app:v1-again`);
    const layers = await waitForLayers('team-a/app', digests.a as string, 2);
    const identities = await Promise.all(
      layers.map(
        async (l) =>
          JSON.parse((await blob('team-a/app', l.digest)).toString()).critical.identity['docker-reference'],
      ),
    );
    expect(identities.sort()).toEqual([`${host}/team-a/app:v1`, `${host}/team-a/app:v1-again`]);
  });
});

describe('when 20 deliveries of one push for a digest covered by 3 rules arrive at once', () => {
  it('ends with exactly the foreign layer plus one layer per rule', async () => {
    // A foreign layer, written with plain fetch and node:crypto as cosign would write it, sits in
    // the .sig manifest before the image arrives; the registry's own push notification is then
    // one more concurrent delivery, which is the point.
    const layout = join(dir, 'layout-multi');
    const digest = await makeImage(layout, { seed: 'multi' });
    await writeCosignSignature({
      registryUrl,
      repository: 'multi/app',
      digest,
      key: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey,
      annotations: { 'dev.example/foreign': 'cosign' },
    });
    await skopeoCopy(layout, `${host}/multi/app:v1`);
    const body = JSON.stringify({
      events: [
        {
          id: 'dup',
          action: 'push',
          target: {
            mediaType: 'application/vnd.oci.image.manifest.v1+json',
            digest,
            repository: 'multi/app',
            tag: 'v1',
            url: `${registryUrl}/v2/multi/app/manifests/${digest}`,
          },
          request: { host },
        },
      ],
    });
    const answers = await Promise.all(
      Array.from({ length: 20 }, () =>
        fetch(`${running.url}/events/distribution`, {
          method: 'POST',
          headers: {
            'content-type': 'application/vnd.docker.distribution.events.v1+json',
            authorization: `Bearer ${running.embeddedEventsToken}`,
          },
          body,
        }),
      ),
    );
    // Accepted into the journal (a duplicate of a pending push gets its id), signed from there.
    expect(answers.map((a) => a.status)).toEqual(Array(20).fill(202));
    // Let the registry's own notification land too, then count once the journal is drained.
    await new Promise((r) => setTimeout(r, 500));
    await running.signing.worker.whenIdle();
    const manifest = await sigManifest('multi/app', digest);
    expect(manifest?.layers).toHaveLength(4);
    expect(manifest?.layers[0]?.annotations['dev.example/foreign']).toBe('cosign');
  });
});
