/**
 * What the reliability tests share: Signet's local service started from a YAML config on a real
 * registry (or a fault proxy in front of it), three local-key witnesses whose public keys an
 * independent verifier trusts, push notifications shaped as docker-registry 2.8 sends them, and
 * delivery the way the registry does it (POST with the events token, and again while the answer
 * is not 2xx).
 *
 * The service answers an authenticated push 202 once it is in its journal and signs it later, so
 * the harness collects every signing attempt through `onSigningReport`, and `settle()` waits until
 * the journal has nothing left to do.
 */
import { createPublicKey, randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startService, type RunningService } from '../../cli/serve';
import { parseConfig } from '../../lib/config/load';
import type { SignetConfig } from '../../lib/config/types';
import { silentLogger } from '../../lib/core/logger';
import { sleep, type RetryPolicy } from '../../lib/core/retry';
import { DISTRIBUTION_EVENTS_V1 } from '../../lib/events';
import type { JournalEntry } from '../../lib/journal';
import type { RuleOutcome, SigningReport } from '../../lib/signing/pipeline';
import {
  checkSignatures,
  pushImageOverHttp,
  type SignatureCheck,
  type TrustedKey,
} from '../support/oci-http';
export { seeded, shuffled } from '../support/random';

/** The events bearer token every harness config sets (`server.eventsToken`) and every delivery sends. */
export const TEST_EVENTS_TOKEN = 'reliability-events-token-2f9c41d7';

/** The `journal` settings a config may set; anything left out gets the harness's value. */
export interface JournalYaml {
  readonly maxAttempts?: number;
  readonly retryBaseSeconds?: number;
  readonly retryMaxSeconds?: number;
  readonly concurrency?: number;
}

/**
 * Journal retries fast enough for tests: 50 ms doubling up to 0.5 s (the product's 1 s up to 5 min
 * would turn each transient failure into a long wait); attempts and concurrency as in production.
 */
export const TEST_JOURNAL: JournalYaml = { retryBaseSeconds: 0.05, retryMaxSeconds: 0.5 };

/** A local-key witness and the one rule that signs with it. */
export interface LocalWitness {
  readonly witness: string;
  readonly algorithm: TrustedKey['algorithm'];
  readonly signatureType: 'default' | 'simple';
}

/** The three local witnesses every reliability test signs with, one rule each. */
export const LOCAL_WITNESSES: readonly LocalWitness[] = [
  { witness: 'release-rsa', algorithm: 'RSASSA_PKCS1_V1_5_SHA_256', signatureType: 'default' },
  { witness: 'release-ec', algorithm: 'ECDSA_SHA_256', signatureType: 'simple' },
  { witness: 'release-pss', algorithm: 'RSASSA_PSS_SHA_256', signatureType: 'simple' },
];

/** A witness with a signing key (`file://` or `awskms://` URI) and the one rule that signs with it. */
export interface SigningWitness {
  readonly witness: string;
  readonly key: string;
  readonly algorithm: TrustedKey['algorithm'];
  readonly signatureType: 'default' | 'simple';
  /** The rule also publishes a Sigstore bundle. */
  readonly bundle?: boolean;
  /** The registry namespace the rule covers, when not the config's. */
  readonly namespace?: string;
}

/** What a harness config holds besides its registry, witnesses and rules. */
export interface ConfigOptions {
  /** Appended as is (policies, admission settings); must not hold `server` or `journal`. */
  readonly extra?: string;
  /** Journal settings over TEST_JOURNAL. */
  readonly journal?: JournalYaml;
}

/**
 * A config with one registry (plain HTTP) and one rule per witness, all covering `namespace`
 * (unless a witness names its own), the events token, and fast journal retries. `options` as a
 * string is `extra`.
 */
export function configYaml(
  registryHost: string,
  namespace: string,
  witnesses: readonly SigningWitness[],
  extraOrOptions: string | ConfigOptions = {},
): string {
  const options: ConfigOptions =
    typeof extraOrOptions === 'string' ? { extra: extraOrOptions } : extraOrOptions;
  const journal = { ...TEST_JOURNAL, ...options.journal };
  return `
registries:
  - host: ${registryHost}
    insecure: true
witnesses:
${witnesses.map((w) => `  - name: ${w.witness}\n    key: ${w.key}`).join('\n')}
signingRules:
${witnesses
  .map(
    (w) => `  - name: rule-${w.witness}
    namespaces: [${w.namespace ?? namespace}]
    witness: ${w.witness}
    algorithm: ${w.algorithm}
    signatureType: ${w.signatureType}${w.bundle === true ? '\n    bundle: true' : ''}`,
  )
  .join('\n')}
server:
  eventsToken: ${TEST_EVENTS_TOKEN}
journal:
${Object.entries(journal)
  .map(([name, value]) => `  ${name}: ${String(value)}`)
  .join('\n')}
${options.extra ?? ''}`;
}

/** The three local witnesses with keys in `keyDir` (relative to the config's directory). */
export const localWitnesses = (keyDir = 'keys'): SigningWitness[] =>
  LOCAL_WITNESSES.map((w) => ({ ...w, key: `file://${keyDir}/${w.witness}.pem` }));

/**
 * `configYaml` with the three local witnesses. Keys live in `keyDir` (default `keys/` next to the
 * config: another instance can share them).
 */
export function localConfigYaml(
  registryHost: string,
  namespace: string,
  options: ConfigOptions & { keyDir?: string } = {},
): string {
  return configYaml(registryHost, namespace, localWitnesses(options.keyDir), options);
}

/** The public keys of the config's local witnesses (which the service creates on its first start). */
export async function localTrustedKeys(config: SignetConfig): Promise<TrustedKey[]> {
  const keys: TrustedKey[] = [];
  for (const witness of config.witnesses) {
    const local = LOCAL_WITNESSES.find((w) => w.witness === witness.name);
    if (witness.key.$case !== 'file' || local === undefined) continue;
    keys.push({
      witness: witness.name,
      algorithm: local.algorithm,
      publicKey: createPublicKey(await readFile(witness.key.path)),
    });
  }
  return keys;
}

/** One signing attempt the journal's worker made: the pipeline's report and the entry it was for. */
export interface Attempt {
  readonly report: SigningReport;
  readonly entry: JournalEntry;
}

/** A running Signet and what the tests check it with. */
export interface Harness {
  readonly running: RunningService;
  readonly config: SignetConfig;
  /** `http://127.0.0.1:<port>` of the service. */
  readonly url: string;
  readonly dir: string;
  /** The local witnesses' public keys (the service created the private keys on start). */
  readonly keys: readonly TrustedKey[];
  /** Every registry retry Signet made (the RegistryClients onRetry observer). */
  readonly retries: { attempt: number; delayMs: number; error: unknown }[];
  /** Every signing attempt from the journal, in the order they finished. */
  readonly attempts: readonly Attempt[];
  /** The reports of every attempt, in order. */
  reports(): SigningReport[];
  /** The attempts at one journal entry, in order. */
  attemptsOf(id: string): Attempt[];
  /**
   * Resolves once the journal holds nothing pending or running (every accepted push signed or
   * dead-lettered); throws with the journal's depth if that takes longer than `timeoutMs`.
   */
  settle(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

/** Retries fast enough for tests, as many as Signet's default policy. */
export const TEST_RETRY: RetryPolicy = { attempts: 5, baseDelayMs: 5, maxDelayMs: 50 };

/** How long `settle` waits by default: long enough for a slow machine, never reached on a sound run. */
const SETTLE_TIMEOUT_MS = 90_000;

export async function startHarness(options: {
  yaml: (dir: string) => string;
  retry?: RetryPolicy;
}): Promise<Harness> {
  const dir = await mkdtemp(join(tmpdir(), 'signet-reliability-'));
  const retries: Harness['retries'] = [];
  const attempts: Attempt[] = [];
  try {
    const config = parseConfig(options.yaml(dir), { baseDir: dir, source: join(dir, 'signet.yaml') });
    const running = await startService(config, {
      logger: silentLogger,
      port: 0,
      registryRetry: options.retry ?? TEST_RETRY,
      onRegistryRetry: (info) => retries.push(info),
      onSigningReport: (report, entry) => attempts.push({ report, entry }),
    });
    const keys = await localTrustedKeys(config);
    const drained = () => {
      const depth = running.journal.depth();
      return depth.pending + depth.running === 0;
    };
    return {
      running,
      config,
      url: running.url,
      dir,
      keys,
      retries,
      attempts,
      reports: () => attempts.map((a) => a.report),
      attemptsOf: (id) => attempts.filter((a) => a.entry.id === id),
      async settle(timeoutMs = SETTLE_TIMEOUT_MS) {
        // whenIdle() also resolves while entries wait for a retry that is not due yet: look again.
        await waitFor(
          'the journal to drain',
          async () => {
            await atMost(running.signing.worker.whenIdle(), 200);
            return drained();
          },
          { timeoutMs, describe: () => JSON.stringify(running.journal.depth()) },
        );
      },
      async stop() {
        running.signet.keys.close();
        await running.stop();
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

/** Waits for `promise`, but no longer than `ms`. */
async function atMost(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([promise, new Promise((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}

/**
 * Polls `check` until it returns true, sleeping `intervalMs` between looks; throws (naming `what`
 * and what `describe` says of the state) when `timeoutMs` passes first. A test waits with this,
 * never with a fixed sleep, and never asserts how long it took.
 */
export async function waitFor(
  what: string,
  check: () => boolean | Promise<boolean>,
  options: { timeoutMs?: number; intervalMs?: number; describe?: () => string | Promise<string> } = {},
): Promise<void> {
  const deadline = Date.now() + (options.timeoutMs ?? SETTLE_TIMEOUT_MS);
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) {
      const state = options.describe !== undefined ? `: ${await options.describe()}` : '';
      throw new Error(`gave up waiting for ${what}${state}`);
    }
    await sleep(options.intervalMs ?? 20);
  }
}

/** A manifest push event as docker-registry 2.8 sends it (one per envelope). */
export function pushEvent(registryHost: string, repository: string, digest: string, tag: string): unknown {
  return {
    id: randomUUID(),
    timestamp: new Date().toISOString(),
    action: 'push',
    target: {
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      size: 400,
      digest,
      length: 400,
      repository,
      url: `http://${registryHost}/v2/${repository}/manifests/${digest}`,
      tag,
    },
    request: {
      id: randomUUID(),
      addr: '127.0.0.1:40000',
      host: registryHost,
      method: 'PUT',
      useragent: 'signet-reliability-test',
    },
    actor: {},
    source: { addr: 'localhost:5000', instanceID: randomUUID() },
  };
}

/** A push the service took into its journal: its entry id, and whether it was already waiting there. */
export interface AcceptedPush {
  readonly id: string;
  readonly image: string;
  readonly duplicate: boolean;
}

/** What the service answered one delivery: status (0: no answer), accepted and ignored pushes. */
export interface Delivery {
  readonly status: number;
  readonly accepted: readonly AcceptedPush[];
  readonly ignored: readonly { readonly image?: string; readonly reason: string }[];
}

/** POSTs one envelope to the service's distribution endpoint with the events token, as the registry does. */
export async function deliver(
  serviceUrl: string,
  events: readonly unknown[],
  token: string = TEST_EVENTS_TOKEN,
): Promise<Delivery> {
  try {
    const res = await fetch(`${serviceUrl}/events/distribution`, {
      method: 'POST',
      headers: { 'content-type': DISTRIBUTION_EVENTS_V1, authorization: `Bearer ${token}` },
      body: JSON.stringify({ events }),
    });
    const body = (await res.json()) as Partial<Pick<Delivery, 'accepted' | 'ignored'>>;
    return { status: res.status, accepted: body.accepted ?? [], ignored: body.ignored ?? [] };
  } catch {
    return { status: 0, accepted: [], ignored: [] };
  }
}

/**
 * Delivers one envelope the way the registry's notification endpoint does: POST, and POST again
 * while the answer is not 2xx, at most `maxDeliveries` times. Returns every delivery, in order.
 */
export async function deliverUntilAccepted(
  serviceUrl: string,
  events: readonly unknown[],
  maxDeliveries: number,
): Promise<Delivery[]> {
  const deliveries: Delivery[] = [];
  do {
    deliveries.push(await deliver(serviceUrl, events));
  } while (!isAccepted(deliveries[deliveries.length - 1]) && deliveries.length < maxDeliveries);
  return deliveries;
}

/** A 2xx answer: the registry stops delivering. */
export const isAccepted = (delivery: Delivery | undefined): boolean =>
  delivery !== undefined && delivery.status >= 200 && delivery.status < 300;

/** Outcomes of every report, counted by status (`not-signed` and `waiting` only when there are some). */
export function countOutcomes(
  reports: readonly SigningReport[],
): Record<'signed' | 'already-signed' | 'failed', number> & Partial<Record<RuleOutcome['status'], number>> {
  const counts: Record<'signed' | 'already-signed' | 'failed', number> &
    Partial<Record<RuleOutcome['status'], number>> = { signed: 0, 'already-signed': 0, failed: 0 };
  for (const report of reports)
    for (const outcome of report.outcomes) counts[outcome.status] = (counts[outcome.status] ?? 0) + 1;
  return counts;
}

/** `CODE` of every failed outcome of `reports`, in order. */
export const failureCodes = (reports: readonly SigningReport[]): string[] =>
  reports.flatMap((r) => r.outcomes.filter((o) => o.status === 'failed').map((o) => o.errorCode ?? '?'));

/** Runs `work` over `items` with at most `concurrency` at a time. */
export async function inPool<T>(
  items: readonly T[],
  concurrency: number,
  work: (item: T, index: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, items.length) }, async () => {
      while (next < items.length) {
        const index = next++;
        await work(items[index] as T, index);
      }
    }),
  );
}

/** One pushed image. */
export interface Pushed {
  readonly repository: string;
  readonly tag: string;
  readonly digest: string;
}

/**
 * Pushes tiny images straight into the registry (plain fetch, no Signet), 16 at a time; every
 * `seed` gives another digest. The first image of each repository is pushed before the others:
 * images of one repository share their layer, and while one upload of a blob rewrites the
 * repository's link to it, distribution answers another client's manifest PUT naming that blob
 * 400 MANIFEST_BLOB_UNKNOWN.
 */
export async function pushImages(
  registryUrl: string,
  images: readonly { repository: string; tag: string; seed: string }[],
): Promise<Pushed[]> {
  const pushed = new Array<Pushed>(images.length);
  const push = async (index: number): Promise<void> => {
    const { repository, tag, seed } = images[index] as (typeof images)[number];
    pushed[index] = { repository, tag, digest: await pushImageOverHttp(registryUrl, repository, tag, seed) };
  };
  const firsts = new Map<string, number>();
  images.forEach((image, index) => {
    if (!firsts.has(image.repository)) firsts.set(image.repository, index);
  });
  const first = new Set(firsts.values());
  await inPool([...first], 16, push);
  await inPool(
    images.map((_, index) => index).filter((index) => !first.has(index)),
    16,
    push,
  );
  return pushed;
}

/**
 * Checks every pushed digest's signatures independently (plain fetch, node:crypto) and returns
 * what is wrong: a digest whose `.sig` manifest has a problem, or a (digest, witness) without
 * exactly one valid signature. An empty list means none lost, none doubled, all sound.
 */
export async function auditSignatures(
  registryUrl: string,
  pushed: readonly Pushed[],
  keys: readonly TrustedKey[],
): Promise<string[]> {
  const findings: string[] = [];
  await inPool(pushed, 16, async (image) => {
    const check: SignatureCheck = await checkSignatures(registryUrl, image.repository, image.digest, keys);
    const where = `${image.repository}@${image.digest}`;
    if (!check.exists) findings.push(`${where}: no .sig manifest`);
    for (const problem of check.problems) findings.push(`${where}: ${problem}`);
    for (const key of keys) {
      const count = check.byWitness.get(key.witness) ?? 0;
      if (count !== 1) findings.push(`${where}: ${count} signatures by ${key.witness}`);
    }
    if (check.layers !== keys.length)
      findings.push(`${where}: ${check.layers} layers for ${keys.length} witnesses`);
  });
  return findings.sort();
}

/**
 * Prints what a run measured (requests, faults, retries...) to stderr when SIGNET_FIGURES is set,
 * for whoever tunes a retry policy; tests stay quiet otherwise and never assert timings.
 */
export function reportFigures(what: string, figures: Readonly<Record<string, unknown>>): void {
  if (process.env['SIGNET_FIGURES']) process.stderr.write(`${what}: ${JSON.stringify(figures)}\n`);
}
