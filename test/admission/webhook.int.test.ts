/**
 * The admission webhook end to end: Signet's local service with the verification routes, real
 * AdmissionReview fixtures pointed at a real registry (through a counting proxy), HTTP auth, and
 * proof that uncovered registries are never contacted.
 */
import { createServer, type Server } from 'node:net';
import type { AddressInfo } from 'node:net';
import { SignetServer } from '../../cli/server';
import { applyPatch } from '../../lib/admission/patch';
import { AdmissionController, type AdmissionReviewResponse } from '../../lib/admission/controller';
import { secretDigest } from '../../lib/http/auth';
import type { ServerSettings } from '../../lib/config/types';
import { silentLogger } from '../../lib/core/logger';
import type { ImageDecision } from '../../lib/verification/decision';
import { writeCosignSignature } from '../support/cosign-writer';
import { startEnvironment, type Environment } from '../verification/environment';
import { fixture } from './fixtures';

/** A TCP server that only counts connections: any contact at all is a failure. */
async function connectionCounter(): Promise<{
  host: string;
  connections: () => number;
  close: () => Promise<void>;
}> {
  let connections = 0;
  const server: Server = createServer((socket) => {
    connections++;
    socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    host: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    connections: () => connections,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

let env: Environment;
let uncovered: Awaited<ReturnType<typeof connectionCounter>>;
let otherNamespace: Awaited<ReturnType<typeof connectionCounter>>;
const services: SignetServer[] = [];
const digests: Record<string, string> = {};

async function startService(server: Pick<ServerSettings, 'bearerToken' | 'secretPath'>): Promise<string> {
  const verifier = env.verifier();
  const service = new SignetServer({
    logger: silentLogger,
    maxBodyBytes: env.config.server.maxBodyBytes,
    verification: {
      access: {
        bearer: server.bearerToken === undefined ? undefined : secretDigest(server.bearerToken),
        secretPath: server.secretPath,
        tokenInPath: false,
      },
      verifier,
      controller: new AdmissionController({ verifier, logger: silentLogger }),
    },
  });
  const address = await service.listen(0, '127.0.0.1');
  services.push(service);
  return `http://127.0.0.1:${address.port}`;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- JSON answers of several shapes
type Json = any;

async function post(
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; json: Json }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: res.status, json: await res.json() };
}

/** A fixture whose images point at the proxy (every request counted). */
const review = (name: Parameters<typeof fixture>[0]) => fixture(name, env.proxy.host);

let url: string;

beforeAll(async () => {
  uncovered = await connectionCounter();
  otherNamespace = await connectionCounter();
  env = await startEnvironment({
    policies: ({ proxy }) => `
  - name: team-a
    enabled: true
    namespaces: [production]
    images: ["${proxy}/team-a/**", "${proxy}/tools/**"]
    attestors:
      - witnesses: [release, partner]
        count: 1
    mutateDigest: true
  - name: eu-only
    enabled: true
    clusters: [eu-1]
    images: ["${proxy}/eu/**"]
    attestors:
      - witnesses: [release]
  - name: elsewhere
    enabled: true
    namespaces: [other]
    images: ["${otherNamespace.host}/**"]
    attestors:
      - witnesses: [release]`,
    server: `
server:
  maxBodyBytes: 65536`,
  });
  // Every image the fixtures name, signed: some through the pipeline, some with the cosign writer.
  for (const repository of ['team-a/web', 'team-a/migrate', 'team-a/batch', 'team-a/fetch', 'tools/debug']) {
    for (const tag of ['v0', 'v1', 'v2']) {
      digests[`${repository}:${tag}`] = await env.push(repository, tag);
      if (repository === 'team-a/migrate') {
        await writeCosignSignature({
          registryUrl: env.registryUrl,
          identityHost: env.proxy.host,
          repository,
          digest: digests[`${repository}:${tag}`]!,
          key: env.keys.partner.privateKey,
        });
      } else {
        await env.sign(repository, tag, 'release-default');
      }
    }
  }
  url = await startService({ bearerToken: undefined, secretPath: undefined });
}, 120_000);

afterAll(async () => {
  await Promise.all(services.map((s) => s.close()));
  await uncovered?.close();
  await otherNamespace?.close();
  await env?.stop();
});

/** Pins the fixture's digest-referenced sidecar to a real signed image. */
function podReview() {
  const r = review('pod-create');
  r.request.object.spec.containers[1].image = `${env.proxy.host}/team-a/web@${digests['team-a/web:v2']}`;
  return r;
}

describe('POST /admission', () => {
  it('allows a signed Pod and patches its tag references to the verified digests', async () => {
    const pod = podReview();
    const { status, json } = await post(`${url}/admission`, pod);
    expect(status).toBe(200);
    const answer = json as AdmissionReviewResponse;
    expect(answer).toMatchObject({
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      response: { uid: pod.request.uid, allowed: true, patchType: 'JSONPatch' },
    });
    const ops = JSON.parse(Buffer.from(answer.response.patch ?? '', 'base64').toString('utf8'));
    expect(ops).toEqual([
      {
        op: 'replace',
        path: '/spec/containers/0/image',
        value: `${env.proxy.host}/team-a/web:v1@${digests['team-a/web:v1']}`,
      },
      {
        op: 'replace',
        path: '/spec/initContainers/0/image',
        value: `${env.proxy.host}/team-a/migrate:v1@${digests['team-a/migrate:v1']}`,
      },
    ]);

    // Apply the patch as the apiserver would, then re-check: digest references only, no HEAD.
    const patched = podReview();
    patched.request.object = applyPatch(pod.request.object, ops);
    const heads = env.proxy.requests.filter((r) => r.method === 'HEAD').length;
    const again = await post(`${url}/admission`, patched);
    expect(again.json.response).toEqual({ uid: patched.request.uid, allowed: true });
    expect(env.proxy.requests.filter((r) => r.method === 'HEAD').length).toBe(heads);
  });

  it('denies a Deployment whose initContainer is unsigned, naming the field, image, policy and reason', async () => {
    await env.push('team-a/unsigned', 'v1');
    const deployment = review('deployment-create');
    deployment.request.object.spec.template.spec.initContainers[0].image = `${env.proxy.host}/team-a/unsigned:v1`;
    const { status, json } = await post(`${url}/admission`, deployment);
    expect(status).toBe(200);
    expect(json.response).toMatchObject({
      uid: deployment.request.uid,
      allowed: false,
      status: { code: 403 },
    });
    const message: string = json.response.status.message;
    expect(message).toContain('spec.template.spec.initContainers[0].image');
    expect(message).toContain(`${env.proxy.host}/team-a/unsigned:v1`);
    expect(message).toContain('policy "team-a"');
    expect(message).toContain('no signatures');
    expect(json.response.patch).toBeUndefined();
  });

  it.each([
    'statefulset-create',
    'daemonset-create',
    'job-create',
    'cronjob-create',
    'replicationcontroller-create',
    'replicaset-create',
  ] as const)('allows a signed %s', async (name) => {
    const { json } = await post(`${url}/admission`, review(name));
    expect(json.response.allowed).toBe(true);
  });

  it('checks the images kubectl debug adds through pods/ephemeralcontainers', async () => {
    const debug = review('pod-ephemeralcontainers-update');
    expect((await post(`${url}/admission`, debug)).json.response.allowed).toBe(true);
    await env.push('tools/unsigned-debug', 'v1');
    debug.request.object.spec.ephemeralContainers[0].image = `${env.proxy.host}/tools/unsigned-debug:v1`;
    const { json } = await post(`${url}/admission`, debug);
    expect(json.response.allowed).toBe(false);
    expect(json.response.status.message).toContain('spec.ephemeralContainers[0].image');
  });

  it('verifies 8 containers of one image with exactly one .sig read', async () => {
    const digest = await env.push('team-a/many', 'v1');
    await env.sign('team-a/many', 'v1', 'release-simple');
    const pod = review('pod-create');
    pod.request.object.spec.containers = Array.from({ length: 8 }, (_, i) => ({
      name: `c${i}`,
      image: `${env.proxy.host}/team-a/many:v1`,
    }));
    pod.request.object.spec.initContainers = [];
    // Signing went through the proxy too: count only what the admission reads.
    const sigPath = `/team-a/many/manifests/${digest.replace(':', '-')}.sig`;
    const [sigBefore, headBefore] = [
      env.proxy.count('GET', sigPath),
      env.proxy.count('HEAD', '/team-a/many/manifests/v1'),
    ];
    const { json } = await post(`${url}/admission`, pod);
    expect(json.response.allowed).toBe(true);
    expect(env.proxy.count('GET', sigPath) - sigBefore).toBe(1);
    expect(env.proxy.count('HEAD', '/team-a/many/manifests/v1') - headBefore).toBe(1);
  });

  it('never connects to a registry no policy covers', async () => {
    const pod = review('pod-create');
    pod.request.object.spec.containers[0].image = `${uncovered.host}/evil/app:v1`;
    pod.request.object.spec.containers[1].image = `${uncovered.host}/evil/app@sha256:${'c'.repeat(64)}`;
    pod.request.object.spec.initContainers[0].image = `${otherNamespace.host}/covered/elsewhere:v1`;
    const { json } = await post(`${url}/admission`, pod);
    expect(json.response.allowed).toBe(false);
    expect(json.response.status.message).toContain('no enabled policy covers');
    // Give any stray connection attempt time to land.
    await new Promise((r) => setTimeout(r, 100));
    expect(uncovered.connections()).toBe(0);
    expect(otherNamespace.connections()).toBe(0);
  });

  it('denies a malformed image reference naming its field path', async () => {
    const pod = podReview();
    pod.request.object.spec.containers[1].image = `${env.proxy.host}/team-a/Web:v1`;
    const { status, json } = await post(`${url}/admission`, pod);
    expect(status).toBe(200);
    expect(json.response.allowed).toBe(false);
    expect(json.response.status.message).toContain('spec.containers[1].image: invalid image reference');
  });

  it('allows DELETE and CONNECT without work', async () => {
    const before = env.proxy.requests.length;
    expect((await post(`${url}/admission`, review('pod-delete'))).json.response.allowed).toBe(true);
    expect((await post(`${url}/admission`, review('pod-exec-connect'))).json.response.allowed).toBe(true);
    expect(env.proxy.requests.length).toBe(before);
  });

  it('decides a dry run the same way', async () => {
    const dry = review('pod-create-dryrun');
    dry.request.object.spec.containers[1].image = `${env.proxy.host}/team-a/web:v0`;
    const { json } = await post(`${url}/admission`, dry);
    expect(json.response).toMatchObject({ uid: dry.request.uid, allowed: true, patchType: 'JSONPatch' });
  });

  describe('cluster selection', () => {
    let euImage: string;
    beforeAll(async () => {
      await env.push('eu/app', 'v1');
      await env.sign('eu/app', 'v1', 'release-default');
      euImage = `${env.proxy.host}/eu/app:v1`;
    });
    const euPod = () => {
      const pod = review('pod-create');
      pod.request.object.spec.containers = [{ name: 'app', image: euImage }];
      pod.request.object.spec.initContainers = [];
      return pod;
    };

    it('takes the cluster from /admission/<cluster>', async () => {
      expect((await post(`${url}/admission/eu-1`, euPod())).json.response.allowed).toBe(true);
      const us = await post(`${url}/admission/us-1`, euPod());
      expect(us.json.response.allowed).toBe(false);
    });

    it('takes the cluster from X-Signet-Cluster', async () => {
      expect(
        (await post(`${url}/admission`, euPod(), { 'x-signet-cluster': 'eu-1' })).json.response.allowed,
      ).toBe(true);
      expect((await post(`${url}/admission`, euPod())).json.response.allowed).toBe(false);
    });

    it('rejects a malformed cluster id', async () => {
      const { status, json } = await post(`${url}/admission/a%20b`, euPod());
      expect(status).toBe(400);
      expect(json.error.code).toBe('REQUEST_INVALID');
    });
  });

  describe('bad requests', () => {
    it('answers 400 ADMISSION_REVIEW_INVALID naming request.uid', async () => {
      const pod = podReview();
      delete pod.request.uid;
      const { status, json } = await post(`${url}/admission`, pod);
      expect(status).toBe(400);
      expect(json.error).toMatchObject({ code: 'ADMISSION_REVIEW_INVALID', field: 'request.uid' });
    });

    it('answers 400 for a body that is not JSON', async () => {
      const { status, json } = await post(`${url}/admission`, '{not json');
      expect(status).toBe(400);
      expect(json.error).toMatchObject({ code: 'ADMISSION_REVIEW_INVALID', field: 'body' });
    });

    it('answers 413 for a body over server.maxBodyBytes', async () => {
      const pod = podReview();
      pod.request.object.metadata.annotations = { big: 'x'.repeat(70_000) };
      const { status, json } = await post(`${url}/admission`, pod);
      expect(status).toBe(413);
      expect(json.error.code).toBe('BODY_TOO_LARGE');
    });
  });
});

describe('POST /verify', () => {
  it('answers the decision with per-policy, per-witness detail', async () => {
    const { status, json } = await post(`${url}/verify`, {
      image: `${env.proxy.host}/team-a/web:v1`,
      namespace: 'production',
    });
    expect(status).toBe(200);
    const decision = json as ImageDecision;
    expect(decision).toMatchObject({ allowed: true, digest: digests['team-a/web:v1'], verdict: 'allow' });
    expect(decision.policies[0]).toMatchObject({ policy: 'team-a', verified: true });
    expect(decision.policies[0]?.attestors[0]?.witnesses.map((w) => [w.witness, w.valid])).toEqual([
      ['release', true],
      ['partner', false],
    ]);
  });

  it('answers a denial with its reason', async () => {
    const { json } = await post(`${url}/verify`, {
      image: `${env.proxy.host}/team-a/unsigned:v1`,
      namespace: 'production',
    });
    expect(json).toMatchObject({ allowed: false, reason: { code: 'NO_SIGNATURES' } });
  });

  it('answers 400 naming the missing field', async () => {
    const { status, json } = await post(`${url}/verify`, { namespace: 'production' });
    expect(status).toBe(400);
    expect(json.error).toMatchObject({ code: 'REQUEST_INVALID', field: 'image' });
  });
});

describe('authentication', () => {
  it('requires the bearer token when one is configured; /healthz stays open', async () => {
    const guarded = await startService({ bearerToken: 'token-123', secretPath: undefined });
    const pod = podReview();
    expect((await post(`${guarded}/admission`, pod)).status).toBe(401);
    expect((await post(`${guarded}/admission`, pod, { authorization: 'Bearer token-124' })).status).toBe(401);
    expect(
      (await post(`${guarded}/verify`, { image: 'x' }, { authorization: 'Basic token-123' })).status,
    ).toBe(401);
    const ok = await post(`${guarded}/admission/eu-1`, pod, { authorization: 'Bearer token-123' });
    expect(ok.status).toBe(200);
    expect(ok.json.response.uid).toBe(pod.request.uid);
    expect((await fetch(`${guarded}/healthz`)).status).toBe(200);
  });

  it('requires the secret path segment when one is configured', async () => {
    const secret = await startService({ bearerToken: undefined, secretPath: 's3cr3t-Path' });
    const pod = podReview();
    expect((await post(`${secret}/admission`, pod)).status).toBe(401);
    expect((await post(`${secret}/admission/eu-1`, pod)).status).toBe(401);
    expect((await post(`${secret}/verify`, { image: 'x' })).status).toBe(401);
    expect((await post(`${secret}/s3cr3t-Path/admission`, pod)).json.response.allowed).toBe(true);
    expect((await post(`${secret}/s3cr3t-Path/admission/eu-1`, pod)).status).toBe(200);
    expect(
      (
        await post(`${secret}/s3cr3t-Path/verify`, {
          image: `${env.proxy.host}/team-a/web:v1`,
          namespace: 'production',
        })
      ).json.allowed,
    ).toBe(true);
    // A wrong first segment is a wrong secret, not an unknown route.
    expect((await post(`${secret}/wrong/admission`, pod)).status).toBe(401);
    expect((await fetch(`${secret}/healthz`)).status).toBe(200);
  });
});
