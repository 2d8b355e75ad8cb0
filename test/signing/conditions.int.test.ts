/**
 * `pushedBy` and `scan` conditions end to end through the local service (`startService`):
 *
 * - Harbor: webhook bodies built from the documented fixtures (PUSH_ARTIFACT with its `operator`,
 *   SCANNING_COMPLETED with its vulnerability summary) POSTed to `/events/harbor` with the events
 *   token, for images in a real distribution registry configured as `kind: harbor`. A push waits
 *   in the journal for its scan, is signed when a clean enough scan arrives, refused when the scan
 *   finds too much, and reported SCAN_TIMEOUT when no scan comes.
 * - Distribution: a registry requiring Basic auth notifies the service itself; its events carry
 *   `actor.name`, which `pushedBy` checks.
 *
 * Signatures are read back with plain fetch and node:crypto.
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
import { fixture, withValue } from '../events/helpers';
import { makeImage, skopeoCopy } from '../support/images';
import { checkSignatures, pushImageOverHttp, type TrustedKey } from '../support/oci-http';
import { freePort } from '../support/ports';
import { startTestRegistry, type TestRegistry } from '../support/registry';

jest.setTimeout(120_000);

const EVENTS_TOKEN = 'events-token-conditions-8d2f6a1c4e9b';
const CI = { username: 'ci', password: 'ci-password-7f3a' };
const REPORT = 'application/vnd.security.vulnerability.report; version=1.1';

let dir: string;
let harbor: TestRegistry;
let authed: TestRegistry;
let running: RunningService;
let release: TrustedKey;
const reports: SigningReport[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'signet-conditions-'));
  harbor = await startTestRegistry();
  const authedHost = `127.0.0.1:${await freePort()}`;
  const yaml = `
registries:
  - host: ${harbor.host}
    kind: harbor
    insecure: true
  - host: ${authedHost}
    insecure: true
    auth: { username: ${CI.username}, password: ${CI.password} }
witnesses:
  - name: release
    key: file://keys/release.pem
signingRules:
  - name: scanned
    namespaces: [team-a]
    registries: [${harbor.host}]
    witness: release
    algorithm: ECDSA_SHA_256
    conditions:
      scan: { maxSeverity: HIGH, waitSeconds: 2 }
  - name: robots
    namespaces: [robots]
    registries: [${harbor.host}]
    witness: release
    algorithm: ECDSA_SHA_256
    conditions:
      pushedBy: ['robot$ci-*']
  - name: by-ci
    namespaces: [team-a]
    registries: [${authedHost}]
    witness: release
    algorithm: ECDSA_SHA_256
    conditions:
      pushedBy: [ci]
  - name: by-release-bot
    namespaces: [team-a]
    registries: [${authedHost}]
    witness: release
    algorithm: ECDSA_SHA_256
    signatureType: simple
    conditions:
      pushedBy: [release-bot]
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
  authed = await startTestRegistry({
    host: authedHost,
    basicAuth: CI,
    notifyUrl: `${running.url}/events/distribution`,
    notifyToken: EVENTS_TOKEN,
  });
  release = {
    witness: 'release',
    publicKey: createPublicKey(await readFile(join(dir, 'keys', 'release.pem'))),
    algorithm: 'ECDSA_SHA_256',
  };
});

afterAll(async () => {
  await running?.stop();
  await Promise.all([harbor?.stop(), authed?.stop()]);
  await rm(dir, { recursive: true, force: true });
});

async function eventually<T>(what: string, check: () => T | undefined): Promise<T> {
  for (let i = 0; i < 600; i++) {
    const value = check();
    if (value !== undefined) return value;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

const outcome = (rule: string, digest: string, status: RuleOutcome['status']) => () =>
  reports
    .flatMap((r) => r.outcomes)
    .find((o) => o.rule === rule && o.digest === digest && o.status === status);

/** A Harbor webhook fixture rewritten for one image of the test registry. */
function harborBody(
  name: string,
  repository: string,
  digest: string,
  tag: string,
  extra: [unknown[], unknown][] = [],
) {
  let body = fixture(name);
  const resource = ['event_data', 'resources', 0];
  body = withValue(body, [...resource, 'digest'], digest);
  body = withValue(body, [...resource, 'tag'], tag);
  body = withValue(body, [...resource, 'resource_url'], `${harbor.host}/${repository}:${tag}`);
  body = withValue(body, ['event_data', 'repository', 'repo_full_name'], repository);
  for (const [path, value] of extra) body = withValue(body, path as (string | number)[], value);
  return body;
}

async function deliver(body: unknown): Promise<{ status: number; json: Record<string, unknown[]> }> {
  const res = await fetch(`${running.url}/events/harbor`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${EVENTS_TOKEN}` },
    body: JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown[]> };
}

const summary = (counts: Record<string, number>): [unknown[], unknown] => [
  ['event_data', 'resources', 0, 'scan_overview', REPORT, 'summary', 'summary'],
  counts,
];

describe('scan conditions with Harbor webhooks', () => {
  it('a push waits for its scan, and is signed when a scan within maxSeverity arrives', async () => {
    const digest = await pushImageOverHttp(harbor.url, 'team-a/app', 'v1', 'scan-ok');
    const pushed = await deliver(harborBody('harbor-push-tag.json', 'team-a/app', digest, 'v1'));
    expect(pushed.status).toBe(202);
    await eventually('the wait', outcome('scanned', digest, 'waiting'));
    expect((await checkSignatures(harbor.url, 'team-a/app', digest, [release])).exists).toBe(false);

    const scanned = await deliver(harborBody('harbor-scanning-completed.json', 'team-a/app', digest, 'v1'));
    expect(scanned.status).toBe(202);
    expect(scanned.json['accepted']).toEqual([expect.objectContaining({ duplicate: true })]);
    await eventually('the signature', outcome('scanned', digest, 'signed'));
    const check = await checkSignatures(harbor.url, 'team-a/app', digest, [release]);
    expect(check).toMatchObject({ problems: [], layers: 1 });
    const sig = (await (
      await fetch(`${harbor.url}/v2/team-a/app/manifests/${digest.replace(':', '-')}.sig`, {
        headers: { accept: 'application/vnd.oci.image.manifest.v1+json' },
      })
    ).json()) as { layers: { digest: string }[] };
    const payload = (await (
      await fetch(`${harbor.url}/v2/team-a/app/blobs/${sig.layers[0]?.digest}`)
    ).json()) as {
      optional: Record<string, string>;
    };
    expect(payload.optional[CONDITION_ANNOTATIONS.scan]).toBe(
      'harbor critical=0 high=3 medium=20 low=30 maxSeverity=HIGH',
    );
  });

  it('a scan with findings above maxSeverity refuses it: nothing is written', async () => {
    const digest = await pushImageOverHttp(harbor.url, 'team-a/app', 'v2', 'scan-critical');
    await deliver(harborBody('harbor-push-tag.json', 'team-a/app', digest, 'v2'));
    await deliver(
      harborBody('harbor-scanning-completed.json', 'team-a/app', digest, 'v2', [
        summary({ Critical: 1, High: 2 }),
      ]),
    );
    const refused = await eventually('the refusal', outcome('scanned', digest, 'not-signed'));
    expect(refused.unmet).toEqual({
      condition: 'scan',
      reason: 'SCAN_FINDINGS',
      detail: 'harbor found 1 CRITICAL above maxSeverity HIGH',
    });
    expect((await checkSignatures(harbor.url, 'team-a/app', digest, [release])).exists).toBe(false);
  });

  it('a scan that never arrives is reported SCAN_TIMEOUT after waitSeconds', async () => {
    const digest = await pushImageOverHttp(harbor.url, 'team-a/app', 'v3', 'scan-never');
    await deliver(harborBody('harbor-push-tag.json', 'team-a/app', digest, 'v3'));
    const late = await eventually('the timeout', outcome('scanned', digest, 'not-signed'));
    expect(late.unmet?.reason).toBe('SCAN_TIMEOUT');
    expect(running.journal.waiting()).toBe(0);
  });

  it('a failed scan refuses it (SCAN_FAILED)', async () => {
    const digest = await pushImageOverHttp(harbor.url, 'team-a/app', 'v4', 'scan-failed');
    await deliver(harborBody('harbor-push-tag.json', 'team-a/app', digest, 'v4'));
    await deliver(harborBody('harbor-scanning-failed.json', 'team-a/app', digest, 'v4'));
    const failed = await eventually('the refusal', outcome('scanned', digest, 'not-signed'));
    expect(failed.unmet?.reason).toBe('SCAN_FAILED');
  });
});

describe('pushedBy with Harbor webhooks (operator)', () => {
  it.each([
    ['robot$ci-build', 'signed'],
    ['admin', 'not-signed'],
  ] as const)('a push by %s is %s', async (operator, status) => {
    const digest = await pushImageOverHttp(harbor.url, 'robots/app', operator.replace(/\W/g, '-'), operator);
    await deliver(
      harborBody('harbor-push-tag.json', 'robots/app', digest, operator.replace(/\W/g, '-'), [
        [['operator'], operator],
      ]),
    );
    const decided = await eventually(`the ${status} outcome`, outcome('robots', digest, status));
    if (status === 'not-signed') expect(decided.unmet?.reason).toBe('PUSHER_NOT_ALLOWED');
  });
});

describe('pushedBy with distribution events (actor.name, Basic auth)', () => {
  it('signs for the rule naming the authenticated pusher, and not for the other', async () => {
    const layout = join(dir, 'layout-authed');
    await makeImage(layout, { seed: 'authed' });
    const digest = await skopeoCopy(layout, `${authed.host}/team-a/app:v1`, { creds: CI });
    const signed = await eventually('by-ci', outcome('by-ci', digest, 'signed'));
    expect(signed.witness).toBe('release');
    const refused = await eventually('by-release-bot', outcome('by-release-bot', digest, 'not-signed'));
    expect(refused.unmet).toMatchObject({ condition: 'pushedBy', reason: 'PUSHER_NOT_ALLOWED' });
    expect(refused.unmet?.detail).toContain('pushed by "ci"');
  });
});
