/**
 * `GET /metrics` of the local service, read as Prometheus reads it: the exposition parses with a
 * Prometheus text-format parser (parse-prometheus-text-format), and its series move with the work
 * the service does: pushes received and ignored, signatures by rule, witness and outcome, policy
 * decisions and cache results of `/verify`, registry request latencies, and the journal's depth.
 * Work goes through the real embedded registry and the service's HTTP surface; each case compares
 * the series before and after its own work.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import parsePrometheusTextFormat, { type MetricFamily } from 'parse-prometheus-text-format';
import { startService, type RunningService } from '../../cli/serve';
import { parseConfig } from '../../lib/config/load';
import { silentLogger } from '../../lib/core/logger';
import { pushImageOverHttp } from '../support/oci-http';
import { freePort } from '../support/ports';
import { deliver, pushEvent, waitFor } from '../reliability/harness';

jest.setTimeout(120_000);

const STEP_TIMEOUT_MS = 30_000;

let dir: string;
let running: RunningService;
let host: string;
let registryUrl: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'signet-metrics-'));
  host = `127.0.0.1:${await freePort()}`;
  registryUrl = `http://${host}`;
  const yaml = `
registries:
  - host: ${host}
    embedded: true
    insecure: true
witnesses:
  - name: release
    key: file://keys/release.pem
signingRules:
  - name: team-a
    namespaces: [team-a]
    witness: release
    algorithm: ECDSA_SHA_256
    signatureType: simple
policies:
  - name: signed-only
    enabled: true
    namespaces: [production]
    images: ["${host}/**"]
    attestors:
      - witnesses: [release]
journal:
  retryBaseSeconds: 0.05
  retryMaxSeconds: 0.2
`;
  const config = parseConfig(yaml, { baseDir: dir, source: join(dir, 'signet.yaml') });
  running = await startService(config, { logger: silentLogger, port: 0 });
});

afterAll(async () => {
  await running?.stop();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

/** One scrape of `/metrics`. */
interface Scrape {
  readonly contentType: string | null;
  readonly families: MetricFamily[];
  /** The same text parsed with every family untyped: see `histogramCount`. */
  readonly untyped: MetricFamily[];
}

async function scrape(): Promise<Scrape> {
  const res = await fetch(`${running.url}/metrics`);
  expect(res.status).toBe(200);
  const text = await res.text();
  return {
    contentType: res.headers.get('content-type'),
    families: parsePrometheusTextFormat(text),
    untyped: parsePrometheusTextFormat(text.replace(/^# TYPE (\S+) histogram$/gm, '# TYPE $1 untyped')),
  };
}

const matches = (labels: Readonly<Record<string, string>> | undefined, wanted: Record<string, string>) =>
  Object.entries(wanted).every(([name, value]) => labels?.[name] === value);

/** The sum of the samples of a counter or gauge whose labels include `labels`; 0 when none. */
function value(families: readonly MetricFamily[], name: string, labels: Record<string, string> = {}): number {
  return families
    .filter((f) => f.name === name)
    .flatMap((f) => f.metrics)
    .filter((m) => 'value' in m && matches(m.labels, labels))
    .reduce((sum, m) => sum + Number((m as { value: string }).value), 0);
}

/**
 * Observations of a histogram's series whose labels include `labels`. parse-prometheus-text-format
 * folds every labelled series of a histogram into one (the last series' buckets, no `_count`), so
 * the counts are read from the untyped view, where `<name>_count` is a family of plain samples.
 */
function histogramCount(scraped: Scrape, name: string, labels: Record<string, string> = {}): number {
  return value(scraped.untyped, `${name}_count`, labels);
}

/** POSTs `/verify`; returns the decision. */
async function verify(image: string): Promise<{ allowed: boolean; verdict: string }> {
  const res = await fetch(`${running.url}/verify`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ image, namespace: 'production' }),
  });
  expect(res.status).toBe(200);
  return (await res.json()) as { allowed: boolean; verdict: string };
}

/** Resolves once the journal holds nothing pending or running. */
async function settled(): Promise<void> {
  await waitFor(
    'the journal to drain',
    () => {
      const depth = running.journal.depth();
      return depth.pending + depth.running === 0;
    },
    { timeoutMs: STEP_TIMEOUT_MS, describe: () => JSON.stringify(running.journal.depth()) },
  );
}

const SIGNATURES = 'signet_signatures_total';
const team = { rule: 'team-a', witness: 'release' };

describe('when /metrics is scraped', () => {
  let scraped: Scrape;

  beforeAll(async () => {
    scraped = await scrape();
  });

  it('answers the Prometheus text format', () => {
    expect(scraped.contentType).toBe('text/plain; version=0.0.4; charset=utf-8');
  });

  it('has every Signet metric, with its type', () => {
    const types = Object.fromEntries(
      scraped.families.filter((f) => f.name.startsWith('signet_')).map((f) => [f.name, f.type]),
    );
    expect(types).toMatchObject({
      signet_pushes_received_total: 'COUNTER',
      signet_pushes_ignored_total: 'COUNTER',
      signet_signatures_total: 'COUNTER',
      signet_signing_failures_total: 'COUNTER',
      signet_journal_entries: 'GAUGE',
      signet_policy_decisions_total: 'COUNTER',
      signet_verification_cache_total: 'COUNTER',
      signet_registry_request_duration_seconds: 'HISTOGRAM',
      signet_kms_request_duration_seconds: 'HISTOGRAM',
    });
  });

  it("has the Node process's default metrics, prefixed signet_ once", () => {
    const names = scraped.families.map((f) => f.name);
    expect(names).toEqual(
      expect.arrayContaining([
        'signet_process_cpu_seconds_total',
        'signet_process_resident_memory_bytes',
        'signet_nodejs_eventloop_lag_seconds',
      ]),
    );
    expect(names.filter((name) => name.startsWith('signet_process_process_'))).toEqual([]);
  });

  it('shows an empty journal', () => {
    for (const state of ['pending', 'running', 'dead_letter']) {
      expect(value(scraped.families, 'signet_journal_entries', { state })).toBe(0);
    }
  });
});

describe('when an event names a registry that is not configured', () => {
  let before: Scrape;
  let after: Scrape;

  beforeAll(async () => {
    before = await scrape();
    const digest = `sha256:${'0'.repeat(64)}`;
    const answer = await deliver(
      running.url,
      [pushEvent('registry.example.com', 'team-a/app', digest, 'v1')],
      running.embeddedEventsToken,
    );
    expect(answer).toMatchObject({ status: 200, accepted: [] });
    expect(answer.ignored).toEqual([expect.objectContaining({ reason: 'registry not configured' })]);
    after = await scrape();
  });

  it('counts the push as received and ignored, by reason', () => {
    const ignored = { reason: 'registry_not_configured' };
    expect(value(after.families, 'signet_pushes_ignored_total', ignored)).toBe(
      value(before.families, 'signet_pushes_ignored_total', ignored) + 1,
    );
    const received = { source: 'distribution' };
    expect(value(after.families, 'signet_pushes_received_total', received)).toBeGreaterThanOrEqual(
      value(before.families, 'signet_pushes_received_total', received) + 1,
    );
  });
});

describe('when a push is signed, and its event is delivered again', () => {
  let before: Scrape;
  let signed: Scrape;
  let redelivered: Scrape;
  let digest: string;

  beforeAll(async () => {
    before = await scrape();
    // The embedded registry tells the service of the push itself.
    digest = await pushImageOverHttp(registryUrl, 'team-a/app', 'v1', 'metrics-signed');
    await waitFor(
      'the push to be signed',
      async () =>
        value((await scrape()).families, SIGNATURES, { ...team, outcome: 'signed' }) >
        value(before.families, SIGNATURES, { ...team, outcome: 'signed' }),
      { timeoutMs: STEP_TIMEOUT_MS, intervalMs: 50 },
    );
    await settled();
    signed = await scrape();
    const answer = await deliver(
      running.url,
      [pushEvent(host, 'team-a/app', digest, 'v1')],
      running.embeddedEventsToken,
    );
    expect(answer.status).toBe(202);
    await waitFor(
      'the delivery again to be found signed',
      async () =>
        value((await scrape()).families, SIGNATURES, { ...team, outcome: 'already-signed' }) >
        value(signed.families, SIGNATURES, { ...team, outcome: 'already-signed' }),
      { timeoutMs: STEP_TIMEOUT_MS, intervalMs: 50 },
    );
    await settled();
    redelivered = await scrape();
  });

  it('counts one signature by rule and witness, signed', () => {
    const labels = { ...team, outcome: 'signed' };
    expect(value(signed.families, SIGNATURES, labels)).toBe(value(before.families, SIGNATURES, labels) + 1);
  });

  it('counts the delivery again as already signed, and no second signature', () => {
    const already = { ...team, outcome: 'already-signed' };
    expect(value(redelivered.families, SIGNATURES, already)).toBe(
      value(signed.families, SIGNATURES, already) + 1,
    );
    const labels = { ...team, outcome: 'signed' };
    expect(value(redelivered.families, SIGNATURES, labels)).toBe(value(signed.families, SIGNATURES, labels));
    expect(value(redelivered.families, SIGNATURES, { outcome: 'failed' })).toBe(0);
  });

  it('counts the signature manifest the registry announced as ignored, being a signature artifact', async () => {
    await waitFor(
      'the .sig push event to be counted',
      async () =>
        value((await scrape()).families, 'signet_pushes_ignored_total', { reason: 'signature_artifact' }) >=
        1,
      { timeoutMs: STEP_TIMEOUT_MS, intervalMs: 50 },
    );
  });

  it('counts the registry requests of the signing in the latency histogram, by method and status', () => {
    const name = 'signet_registry_request_duration_seconds';
    const put = { registry: host, method: 'PUT', status: '2xx' };
    expect(histogramCount(signed, name, put)).toBeGreaterThan(histogramCount(before, name, put));
    const all = { registry: host };
    expect(histogramCount(signed, name, all)).toBeGreaterThan(histogramCount(before, name, all));
    expect(histogramCount(redelivered, name, all)).toBeGreaterThan(histogramCount(signed, name, all));
  });

  it('keeps the histogram consistent: the +Inf bucket of each series equals its count', () => {
    const name = 'signet_registry_request_duration_seconds';
    const buckets = redelivered.untyped
      .filter((f) => f.name === `${name}_bucket`)
      .flatMap((f) => f.metrics)
      .filter((m) => m.labels?.['le'] === '+Inf');
    expect(buckets.length).toBeGreaterThan(0);
    for (const bucket of buckets) {
      const { le: _le, ...labels } = bucket.labels ?? {};
      expect(Number((bucket as { value: string }).value)).toBe(histogramCount(redelivered, name, labels));
    }
  });

  describe('when /verify is asked about the signed image, twice, and about an unsigned one', () => {
    let verified: Scrape;
    const answers: { allowed: boolean; verdict: string }[] = [];

    beforeAll(async () => {
      const unsigned = await pushImageOverHttp(registryUrl, 'other/app', 'v1', 'metrics-unsigned');
      verified = await scrape();
      answers.push(await verify(`${host}/team-a/app@${digest}`));
      answers.push(await verify(`${host}/team-a/app@${digest}`));
      answers.push(await verify(`${host}/other/app@${unsigned}`));
    });

    it('allowed the signed image and denied the other', () => {
      expect(answers.map((a) => a.allowed)).toEqual([true, true, false]);
    });

    it('counts the policy decisions by policy and effect', async () => {
      const after = await scrape();
      const decisions = 'signet_policy_decisions_total';
      const pass = { policy: 'signed-only', effect: 'pass' };
      const deny = { policy: 'signed-only', effect: 'deny' };
      expect(value(after.families, decisions, pass)).toBe(value(verified.families, decisions, pass) + 2);
      expect(value(after.families, decisions, deny)).toBe(value(verified.families, decisions, deny) + 1);
    });

    it('counts one cache hit (the second look at the signed image) and two misses', async () => {
      const after = await scrape();
      const cache = 'signet_verification_cache_total';
      expect(value(after.families, cache, { result: 'hit' })).toBe(
        value(verified.families, cache, { result: 'hit' }) + 1,
      );
      expect(value(after.families, cache, { result: 'miss' })).toBe(
        value(verified.families, cache, { result: 'miss' }) + 2,
      );
    });

    it('counts the signature reads, a 404 for the unsigned image among them', async () => {
      const after = await scrape();
      const name = 'signet_registry_request_duration_seconds';
      const missing = { registry: host, method: 'GET', status: '4xx' };
      expect(histogramCount(after, name, missing)).toBeGreaterThan(histogramCount(verified, name, missing));
    });
  });
});

describe('when an accepted push can never be signed (its manifest is not in the registry)', () => {
  let before: Scrape;

  beforeAll(async () => {
    before = await scrape();
    const digest = `sha256:${randomBytes(32).toString('hex')}`;
    const answer = await deliver(
      running.url,
      [pushEvent(host, 'team-a/ghost', digest, 'v1')],
      running.embeddedEventsToken,
    );
    expect(answer.status).toBe(202);
  });

  it('shows it in the journal gauge as a dead letter once its attempts are spent', async () => {
    await waitFor(
      'the push to be dead-lettered',
      async () => value((await scrape()).families, 'signet_journal_entries', { state: 'dead_letter' }) === 1,
      { timeoutMs: STEP_TIMEOUT_MS, intervalMs: 50 },
    );
    const after = await scrape();
    expect(value(before.families, 'signet_journal_entries', { state: 'dead_letter' })).toBe(0);
    expect(value(after.families, 'signet_journal_entries', { state: 'pending' })).toBe(0);
    expect(value(after.families, 'signet_journal_entries', { state: 'running' })).toBe(0);
  });
});
