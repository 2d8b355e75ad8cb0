/**
 * The local service's Prometheus metrics (`GET /metrics`), fed by `lib/`'s telemetry hooks, the
 * events surface and the journal. Labels are bounded: rule, witness, policy and registry names
 * come from the configuration, reasons and codes from fixed lists; no image name is a label.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { KmsRequestSample, RegistryRequestSample, Telemetry } from '../lib/core/telemetry';
import type { JournalDepth } from '../lib/journal';
import type { IntakeOutcome } from '../lib/signing/intake';
import type { SigningReport } from '../lib/signing/report';

/** Buckets for request latencies: 1 ms to 10 s. */
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Why a push was not signed, as a fixed set of label values. */
export function ignoredReason(reason: string): string {
  if (reason.startsWith('registry not')) return 'registry_not_configured';
  if (reason.startsWith('no signing rule')) return 'no_rule';
  if (reason.startsWith('signature artifact')) return 'signature_artifact';
  if (/^(blob push|blob mount|pull event|delete event|push without)/.test(reason))
    return 'not_a_manifest_push';
  if (reason.startsWith('manifest of unsupported') || reason.includes('schema 1'))
    return 'unsupported_manifest';
  return 'other';
}

/** HTTP status classes: `2xx`, `4xx`, `5xx`, or `error` when no answer came. */
const statusClass = (status: number): string => (status === 0 ? 'error' : `${Math.floor(status / 100)}xx`);

/** Every metric of the local service, in its own registry (never the global one). */
export class ServiceMetrics implements Telemetry {
  readonly registry = new Registry();
  private readonly pushesReceived: Counter<'source'>;
  private readonly pushesIgnored: Counter<'reason'>;
  private readonly signatures: Counter<'rule' | 'witness' | 'outcome'>;
  private readonly failures: Counter<'code'>;
  private readonly admissions: Counter<'policy' | 'effect'>;
  private readonly cache: Counter<'result'>;
  private readonly registryLatency: Histogram<'registry' | 'method' | 'status'>;
  private readonly kmsLatency: Histogram<'operation' | 'outcome'>;

  constructor(journalDepth: () => JournalDepth | undefined) {
    const registers = [this.registry];
    // prom-client's default names already begin with process_ or nodejs_ (signet_process_cpu_seconds_total).
    collectDefaultMetrics({ register: this.registry, prefix: 'signet_' });
    this.pushesReceived = new Counter({
      name: 'signet_pushes_received_total',
      help: 'Pushes named by authenticated events, by event source',
      labelNames: ['source'],
      registers,
    });
    this.pushesIgnored = new Counter({
      name: 'signet_pushes_ignored_total',
      help: 'Pushes acknowledged and not signed, by reason',
      labelNames: ['reason'],
      registers,
    });
    this.signatures = new Counter({
      name: 'signet_signatures_total',
      help: 'Signing outcomes by rule, witness and outcome (signed, already-signed, failed)',
      labelNames: ['rule', 'witness', 'outcome'],
      registers,
    });
    this.failures = new Counter({
      name: 'signet_signing_failures_total',
      help: 'Failed signing attempts by error code',
      labelNames: ['code'],
      registers,
    });
    new Gauge({
      name: 'signet_journal_entries',
      help: 'Journal entries by state (pending, running, dead_letter)',
      labelNames: ['state'],
      registers,
      collect() {
        const depth = journalDepth();
        if (depth === undefined) return;
        this.set({ state: 'pending' }, depth.pending);
        this.set({ state: 'running' }, depth.running);
        this.set({ state: 'dead_letter' }, depth.deadLetters);
      },
    });
    this.admissions = new Counter({
      name: 'signet_policy_decisions_total',
      help: 'Policy decisions on images (admission and /verify) by policy and effect (pass, deny, warn)',
      labelNames: ['policy', 'effect'],
      registers,
    });
    this.cache = new Counter({
      name: 'signet_verification_cache_total',
      help: 'Policy results reused from the positive cache (hit) or computed (miss)',
      labelNames: ['result'],
      registers,
    });
    this.registryLatency = new Histogram({
      name: 'signet_registry_request_duration_seconds',
      help: 'Registry requests until the answer headers, by registry, method and status class',
      labelNames: ['registry', 'method', 'status'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.kmsLatency = new Histogram({
      name: 'signet_kms_request_duration_seconds',
      help: 'KMS calls (the SDK retries included) by operation and outcome',
      labelNames: ['operation', 'outcome'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
  }

  /** Counts what the events surface did with the pushes of one delivery. */
  intake(source: string, outcomes: readonly IntakeOutcome[]): void {
    for (const outcome of outcomes) {
      this.pushesReceived.inc({ source });
      if (outcome.$case === 'ignored') this.pushesIgnored.inc({ reason: ignoredReason(outcome.reason) });
    }
  }

  /** Counts one signing attempt's outcomes. */
  signing(report: SigningReport): void {
    for (const outcome of report.outcomes) {
      this.signatures.inc({ rule: outcome.rule, witness: outcome.witness, outcome: outcome.status });
      if (outcome.status === 'failed') this.failures.inc({ code: outcome.errorCode ?? 'INTERNAL' });
    }
  }

  registryRequest(sample: RegistryRequestSample): void {
    this.registryLatency.observe(
      { registry: sample.registry, method: sample.method, status: statusClass(sample.status) },
      sample.seconds,
    );
  }

  kmsRequest(sample: KmsRequestSample): void {
    this.kmsLatency.observe(
      { operation: sample.operation, outcome: sample.ok ? 'ok' : 'error' },
      sample.seconds,
    );
  }

  verificationCache(hit: boolean): void {
    this.cache.inc({ result: hit ? 'hit' : 'miss' });
  }

  policyDecision(policy: string, effect: 'pass' | 'deny' | 'warn'): void {
    this.admissions.inc({ policy, effect });
  }

  /** The text exposition. */
  async exposition(): Promise<{ contentType: string; text: string }> {
    return { contentType: this.registry.contentType, text: await this.registry.metrics() };
  }
}
