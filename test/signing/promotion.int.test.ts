/**
 * Countersigning end to end, through the local service (`startService`) and real CNCF
 * distribution registries whose notifications reach it: the embedded registry (dev and prod
 * namespaces) and a replica under another host. Images and signatures are copied byte for byte
 * over plain HTTP, as `cosign copy` and registry replication copy them (image first, then its
 * `.sig`); signatures are read back and checked with node:crypto only.
 *
 * - Promotion: `prod/**` signs with the prod witness only what the dev witness signed, wherever
 *   it was pushed first (`signedIdentity: matchDigest`); an unsigned image pushed straight into
 *   prod is refused (`NOT_COUNTERSIGNED`).
 * - Replication: the replica countersigns what the dev witness signed on the primary
 *   (`remapIdentity`).
 */
import { createPublicKey } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startService, type RunningService } from '../../cli/serve';
import { parseConfig } from '../../lib/config/load';
import { jsonLogger } from '../../lib/core/logger';
import { CONDITION_ANNOTATIONS } from '../../lib/signing/conditions';
import type { RuleOutcome, SigningReport } from '../../lib/signing/pipeline';
import { checkSignatures, copyOverHttp, pushImageOverHttp, type TrustedKey } from '../support/oci-http';
import { freePort } from '../support/ports';
import { startTestRegistry, type TestRegistry } from '../support/registry';

jest.setTimeout(120_000);

const EVENTS_TOKEN = 'events-token-promotion-3c9a1e7f5b2d';

let dir: string;
let primary: string;
let primaryUrl: string;
let replica: TestRegistry;
let running: RunningService;
let keys: TrustedKey[];
const reports: SigningReport[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'signet-promotion-'));
  primary = `127.0.0.1:${await freePort()}`;
  primaryUrl = `http://${primary}`;
  const replicaHost = `127.0.0.1:${await freePort()}`;
  const yaml = `
registries:
  - host: ${primary}
    embedded: true
    insecure: true
  - host: ${replicaHost}
    insecure: true
witnesses:
  - name: dev
    key: file://keys/dev.pem
  - name: prod
    key: file://keys/prod.pem
  - name: mirror
    key: file://keys/mirror.pem
signingRules:
  - name: dev
    namespaces: [dev]
    registries: [${primary}]
    witness: dev
    algorithm: ECDSA_SHA_256
  - name: promote
    namespaces: [prod]
    registries: [${primary}]
    witness: prod
    algorithm: ECDSA_SHA_256
    signatureType: simple
    conditions:
      signedBy: [dev]
      signedIdentity: { type: matchDigest }
  - name: mirror
    namespaces: [dev]
    registries: [${replicaHost}]
    witness: mirror
    algorithm: ECDSA_SHA_256
    conditions:
      signedBy: [dev]
      signedIdentity: { type: remapIdentity, prefix: "${replicaHost}", signedPrefix: "${primary}" }
server:
  eventsToken: ${EVENTS_TOKEN}
journal:
  retryBaseSeconds: 0.05
  retryMaxSeconds: 0.2
`;
  const config = parseConfig(yaml, { baseDir: dir, source: join(dir, 'signet.yaml') });
  running = await startService(config, {
    logger: jsonLogger('error', () => undefined),
    port: 0,
    onSigningReport: (report) => reports.push(report),
  });
  replica = await startTestRegistry({
    host: replicaHost,
    notifyUrl: `${running.url}/events/distribution`,
    notifyToken: EVENTS_TOKEN,
  });
  keys = await Promise.all(
    ['dev', 'prod', 'mirror'].map(async (witness) => ({
      witness,
      publicKey: createPublicKey(await readFile(join(dir, 'keys', `${witness}.pem`))),
      algorithm: 'ECDSA_SHA_256' as const,
    })),
  );
});

afterAll(async () => {
  await running?.stop();
  await replica?.stop();
  await rm(dir, { recursive: true, force: true });
});

/** Polls until `check` returns a value (the registry notifies asynchronously). */
async function eventually<T>(what: string, check: () => Promise<T | undefined> | T | undefined): Promise<T> {
  for (let i = 0; i < 600; i++) {
    const value = await check();
    if (value !== undefined) return value;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

const outcomeOf = (rule: string, digest: string, status: RuleOutcome['status']) => () =>
  reports
    .flatMap((r) => r.outcomes)
    .find((o) => o.rule === rule && o.digest === digest && o.status === status);

async function witnessesOn(url: string, repository: string, digest: string): Promise<Map<string, number>> {
  const check = await checkSignatures(url, repository, digest, keys);
  expect(check.problems).toEqual([]);
  return new Map(check.byWitness);
}

async function payloads(url: string, repository: string, digest: string): Promise<Record<string, unknown>[]> {
  const sig = (await (
    await fetch(`${url}/v2/${repository}/manifests/${digest.replace(':', '-')}.sig`, {
      headers: { accept: 'application/vnd.oci.image.manifest.v1+json' },
    })
  ).json()) as { layers: { digest: string }[] };
  return Promise.all(
    sig.layers.map(
      async (layer) =>
        (await (await fetch(`${url}/v2/${repository}/blobs/${layer.digest}`)).json()) as Record<
          string,
          unknown
        >,
    ),
  );
}

const sigTag = (digest: string): string => `${digest.replace(':', '-')}.sig`;

describe('a promotion rule', () => {
  let digest: string;

  beforeAll(async () => {
    digest = await pushImageOverHttp(primaryUrl, 'dev/app', 'v1', 'promoted');
    await eventually('the dev signature', outcomeOf('dev', digest, 'signed'));
  });

  it('countersigns the dev-signed image copied into prod, once its signatures follow it', async () => {
    // cosign copy's order: the image, then its signatures.
    await copyOverHttp(
      { url: primaryUrl, repository: 'dev/app', reference: 'v1' },
      { url: primaryUrl, repository: 'prod/app', reference: 'v1' },
    );
    const refused = await eventually('the image push decided', outcomeOf('promote', digest, 'not-signed'));
    expect(refused.unmet).toMatchObject({ condition: 'signedBy', reason: 'NOT_COUNTERSIGNED' });
    expect(refused.unmet?.detail).toMatch(/^NO_SIGNATURES/);

    await copyOverHttp(
      { url: primaryUrl, repository: 'dev/app', reference: sigTag(digest) },
      { url: primaryUrl, repository: 'prod/app', reference: sigTag(digest) },
    );
    await eventually('the countersignature', outcomeOf('promote', digest, 'signed'));
    expect(await witnessesOn(primaryUrl, 'prod/app', digest)).toEqual(
      new Map([
        ['dev', 1],
        ['prod', 1],
      ]),
    );
    const prod = (await payloads(primaryUrl, 'prod/app', digest)).find(
      (p) => (p['optional'] as Record<string, string>)['dev.signet/witness'] === 'prod',
    );
    expect((prod?.['optional'] as Record<string, string>)[CONDITION_ANNOTATIONS.countersigns]).toMatch(
      new RegExp(`^witness=dev identity=${primary}/dev/app:v1 signature=sha256:[0-9a-f]{64}$`),
    );
  });

  it('does not sign again when its own .sig write comes back as an event', async () => {
    await eventually('the re-drive by our own signature', () =>
      reports
        .flatMap((r) => r.outcomes)
        .find((o) => o.rule === 'promote' && o.digest === digest && o.status === 'already-signed'),
    );
    expect(await witnessesOn(primaryUrl, 'prod/app', digest)).toEqual(
      new Map([
        ['dev', 1],
        ['prod', 1],
      ]),
    );
  });

  it('refuses an unsigned image pushed straight into prod', async () => {
    const unsigned = await pushImageOverHttp(primaryUrl, 'prod/app', 'v2', 'straight-to-prod');
    const refused = await eventually('the refusal', outcomeOf('promote', unsigned, 'not-signed'));
    expect(refused.unmet).toMatchObject({ condition: 'signedBy', reason: 'NOT_COUNTERSIGNED' });
    expect((await checkSignatures(primaryUrl, 'prod/app', unsigned, keys)).exists).toBe(false);
  });
});

describe('a replica under another host (remapIdentity)', () => {
  it('is countersigned after the upstream signature verifies', async () => {
    const digest = await pushImageOverHttp(primaryUrl, 'dev/mirrored', 'v1', 'mirrored');
    await eventually('the dev signature', outcomeOf('dev', digest, 'signed'));
    // Replication order varies: here the signature lands first, and the image's push decides.
    await copyOverHttp(
      { url: primaryUrl, repository: 'dev/mirrored', reference: sigTag(digest) },
      { url: replica.url, repository: 'dev/mirrored', reference: sigTag(digest) },
    );
    await copyOverHttp(
      { url: primaryUrl, repository: 'dev/mirrored', reference: 'v1' },
      { url: replica.url, repository: 'dev/mirrored', reference: 'v1' },
    );
    await eventually('the mirror countersignature', outcomeOf('mirror', digest, 'signed'));
    expect(await witnessesOn(replica.url, 'dev/mirrored', digest)).toEqual(
      new Map([
        ['dev', 1],
        ['mirror', 1],
      ]),
    );
    const mirror = (await payloads(replica.url, 'dev/mirrored', digest)).find(
      (p) => (p['optional'] as Record<string, string>)['dev.signet/witness'] === 'mirror',
    );
    // The replica's own name, with the tag: what admission on the replica checks.
    expect((mirror?.['critical'] as { identity: Record<string, string> }).identity['docker-reference']).toBe(
      `${replica.host}/dev/mirrored:v1`,
    );
    // The primary's dev rule does not cover the replica: nothing but the mirror signed there.
    expect(reports.some((r) => r.registry === replica.host && r.outcomes.some((o) => o.rule === 'dev'))).toBe(
      false,
    );
  });
});
