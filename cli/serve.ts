import { randomBytes } from 'node:crypto';
import { checkConfig } from '../lib/config/check';
import type { SignetConfig } from '../lib/config/types';
import { describeError } from '../lib/core/errors';
import { eventSender, secretDigest, type EventSender, type VerificationAccess } from '../lib/http/auth';
import { InFlightLimit, type Readiness, type SurfaceDeps } from '../lib/http/surface';
import { AdmissionController } from '../lib/admission/controller';
import { Journal } from '../lib/journal';
import { KeyRing } from '../lib/keys/keyring';
import { preflight } from '../lib/keys/preflight';
import { ensureLocalKeys } from '../lib/keys/provision';
import { LedgerRecorder } from '../lib/ledger/recorder';
import { signingTimes } from '../lib/ledger/records';
import { SqliteLedger } from '../lib/ledger/sqlite';
import type { SigningTimeLookup } from '../lib/verification/revocation';
import { ReverifyLoop, type ReverifyLoopOptions } from '../lib/reverify/loop';
import { Reverifier } from '../lib/reverify/reverifier';
import { WebhookSink } from '../lib/reverify/webhook';
import { DurableSigning, type DurableSigningDeps } from '../lib/signing/durable';
import { createSignet, type Signet, type SignetOptions } from '../lib/signet';
import { ImageVerifier } from '../lib/verification/verifier';
import { LedgerMetrics } from './ledger-metrics';
import { ServiceMetrics } from './metrics';
import { SignetServer } from './server';
import { SupervisedRegistry, type SupervisorOptions } from './supervisor';
import { version } from '../package.json';
import { StatusRecorder } from './ui/recorder';
import { overlay, type FindingRecord, type StatusSource } from './ui/source';
import { renderStatusPage } from './ui/status-page';

/** A running local service, with the embedded registry when the config asks for one. */
export interface RunningService {
  /** `http(s)://host:port` of the service. */
  readonly url: string;
  readonly port: number;
  readonly signet: Signet;
  readonly server: SignetServer;
  readonly journal: Journal;
  readonly signing: DurableSigning;
  readonly metrics: ServiceMetrics;
  /** The ledger (in the journal's file) and what records into it. */
  readonly ledger: SqliteLedger;
  readonly recorder: LedgerRecorder;
  /** Continuous re-verification, when the config has `reverify`. */
  readonly reverify: ReverifyLoop | undefined;
  /** The embedded registry under supervision, when the config has one. */
  readonly registry: SupervisedRegistry | undefined;
  /** The bearer token the embedded registry delivers events with (tests deliver with it too). */
  readonly embeddedEventsToken: string | undefined;
  /** What `/readyz` answers. */
  readiness(): Promise<Readiness>;
  /**
   * Graceful stop (SIGTERM): not ready at once, stop accepting, answer the requests in flight, let
   * signings in flight finish within `server.shutdownGraceSeconds` (what does not finish stays in
   * the journal for the next start), then stop the registry and close the journal.
   */
  stop(): Promise<void>;
}

/**
 * Starts Signet locally: local keys created when missing, the configuration checked against the
 * keys (a rule that cannot sign refuses to start), the journal opened (pushes a previous run
 * accepted are signed again), the HTTP(S) service, and then the embedded registry (after the
 * service, so the registry's first notification finds Signet listening).
 */
export async function startService(
  config: SignetConfig,
  options: SignetOptions & {
    port?: number;
    /** Told about every signing attempt from the journal (tests, metrics). */
    onSigningReport?: DurableSigningDeps['onReport'];
    /** How the embedded registry is restarted (tests make it fast). */
    supervisor?: SupervisorOptions;
    /** How often the TLS files are checked for a renewal (tests make it fast). */
    tlsReloadMs?: number;
    /** Told about every re-verification round (tests). */
    onReverifyRound?: ReverifyLoopOptions['onRound'];
  },
): Promise<RunningService> {
  const logger = options.logger;
  await ensureLocalKeys(config, logger);
  for (const warning of checkConfig(config).warnings) logger.warn('config', { warning });
  // The metrics exist before the journal opens (KMS calls in preflight are measured too).
  const opening: { journal?: Journal; ledger?: SqliteLedger } = {};
  const metrics = new ServiceMetrics(() =>
    opening.journal === undefined ? undefined : safeDepth(opening.journal),
  );
  // Time-bound revocations read when Signet signed from the ledger, opened with the journal below.
  const signingTime: SigningTimeLookup = (query) =>
    opening.ledger === undefined ? Promise.resolve(undefined) : signingTimes(opening.ledger)(query);
  const signet = createSignet(config, {
    ...options,
    telemetry: options.telemetry ?? metrics,
    signingTime,
  });
  await preflight(config, signet.keys, logger);

  const opened = Journal.open(config.journal.path);
  opening.journal = opened;
  // What the status page (`GET /ui`) shows: the in-memory recorder, with the ledger's findings.
  const status = new StatusRecorder({ journal: opened, maxAttempts: config.journal.maxAttempts });
  // The ledger lives in the journal's file, written by the journal's owner: this process.
  let ledger: SqliteLedger;
  try {
    ledger = SqliteLedger.open(opened, { retentionDays: config.ledger.retentionDays });
    opening.ledger = ledger;
  } catch (error) {
    opened.close();
    throw error;
  }
  const statusSource = withLedgerFindings(status, ledger);
  const ledgerMetrics = new LedgerMetrics(metrics.registry);
  const recorder = new LedgerRecorder({
    ledger,
    logger,
    recordedBy: 'serve',
    rules: config.signingRules,
    onFailure: (failure) => ledgerMetrics.ledgerFailure(failure),
  });
  const signing = new DurableSigning({
    pipeline: signet.pipeline,
    journal: opened,
    settings: config.journal,
    logger,
    onReport: (report, entry) => {
      metrics.signing(report);
      status.signing(report, entry);
      recorder.signing(report, entry.event.id);
      options.onSigningReport?.(report, entry);
    },
  });
  const reverify = reverifyLoop(config, signet, ledger, ledgerMetrics, logger, options.onReverifyRound);
  const embedded = config.registries.find((r) => r.embedded);
  // The embedded registry gets a token of its own, good for events about its own host only.
  const embeddedEventsToken = embedded !== undefined ? randomBytes(32).toString('hex') : undefined;
  const senders: EventSender[] = [];
  if (config.server.eventsToken !== undefined)
    senders.push(eventSender('events token', config.server.eventsToken));
  if (embedded !== undefined && embeddedEventsToken !== undefined)
    senders.push(eventSender('embedded registry', embeddedEventsToken, [embedded.host]));

  let shuttingDown = false;
  let registry: SupervisedRegistry | undefined;
  const readiness = async (): Promise<Readiness> => {
    const checks: Record<string, { ok: boolean; reason?: string }> = {
      // Loaded and checked against its keys before anything listened.
      config: { ok: true },
      keys: { ok: true },
      journal: journalCheck(opened),
    };
    if (registry !== undefined) {
      const health = registry.health();
      checks['registry'] = health.up ? { ok: true } : { ok: false, reason: health.reason ?? 'down' };
    }
    if (shuttingDown) checks['service'] = { ok: false, reason: 'shutting down' };
    return { ready: Object.values(checks).every((c) => c.ok), checks };
  };

  const surface: SurfaceDeps = {
    logger,
    maxBodyBytes: config.server.maxBodyBytes,
    limit: new InFlightLimit(config.server.maxInFlight),
    verification: {
      access: verificationAccess(config),
      verifier: signet.verifier,
      controller: new AdmissionController({
        verifier: signet.verifier,
        logger,
        observe: (outcome) => {
          status.admission(outcome);
          recorder.admission(outcome);
        },
      }),
      onDecision: (decision) => recorder.verification(decision),
    },
    events: {
      senders,
      isConfigured: (host) => config.registries.some((r) => r.host === host),
      intake: signing,
      observe: (source, outcomes) => {
        metrics.intake(source, outcomes);
        status.intake(outcomes);
      },
    },
    statusPage: { render: () => renderStatusPage(statusSource, { now: Date.now(), version }) },
    operations: { readiness, metrics: () => metrics.exposition() },
  };
  const server = new SignetServer(surface, {
    tls: config.server.tls,
    logger,
    ...(options.tlsReloadMs !== undefined ? { tlsReloadMs: options.tlsReloadMs } : {}),
  });
  // With HTTPS, the embedded registry delivers its events to a loopback-only plain listener: it
  // cannot be given the service's CA, and its token is good for its own host only anyway.
  const internal =
    embedded !== undefined && config.server.tls !== undefined
      ? new SignetServer({ logger, maxBodyBytes: config.server.maxBodyBytes, events: surface.events })
      : undefined;
  let url: string;
  let port: number;
  let eventsUrl: string;
  try {
    const address = await server.listen(options.port ?? config.server.port, config.server.host);
    port = address.port;
    url = `${server.scheme}://${hostForUrl(config.server.host)}:${address.port}`;
    eventsUrl = url;
    if (internal !== undefined) {
      const inner = await internal.listen(0, '127.0.0.1');
      eventsUrl = `http://127.0.0.1:${inner.port}`;
    }
  } catch (error) {
    await server.close();
    await internal?.close();
    await ledger.close();
    opened.close();
    throw error;
  }
  signing.start();
  reverify?.start();
  try {
    if (embedded !== undefined) {
      registry = new SupervisedRegistry(
        {
          host: embedded.host,
          dataDir: embedded.dataDir,
          notifyUrl: `${eventsUrl}/events/distribution`,
          ...(embeddedEventsToken !== undefined ? { notifyToken: embeddedEventsToken } : {}),
        },
        logger,
        options.supervisor,
      );
      await registry.start();
      logger.info('embedded registry started', { registry: embedded.host, dataDir: embedded.dataDir });
    }
  } catch (error) {
    await reverify?.stop();
    await signing.stop(0);
    await server.close();
    await internal?.close();
    await recorder.close();
    await ledger.close();
    opened.close();
    throw error;
  }
  const depth = opened.depth();
  logger.info('signet listening', {
    url,
    rules: config.signingRules.length,
    policies: config.policies.length,
    journal: config.journal.path,
    pending: depth.pending + depth.running,
    deadLetters: depth.deadLetters,
  });
  let stopping: Promise<void> | undefined;
  return {
    url,
    port,
    signet,
    server,
    journal: opened,
    signing,
    metrics,
    ledger,
    recorder,
    reverify,
    registry,
    embeddedEventsToken,
    readiness,
    stop() {
      stopping ??= (async () => {
        shuttingDown = true;
        // Reviews and deliveries in flight are answered; a push accepted now is journaled.
        await Promise.all([server.close(), internal?.close()]);
        // Signings in flight may finish (they need the registry); the rest waits in the journal.
        await Promise.all([signing.stop(config.server.shutdownGraceMs), reverify?.stop()]);
        await registry?.stop();
        signet.keys.close();
        // What was decided and signed up to now goes into the ledger before its file closes.
        await recorder.close();
        await ledger.close();
        opened.close();
        logger.info('signet stopped');
      })();
      return stopping;
    },
  };
}

/**
 * Re-verification every `reverify.intervalSeconds`, when configured: each round a verifier and
 * key ring of its own (nothing cached from admission; a key file removed or a KMS key disabled
 * since shows), the service's registry clients (their tokens, not their answers, are reused).
 */
function reverifyLoop(
  config: SignetConfig,
  signet: Signet,
  ledger: SqliteLedger,
  telemetry: LedgerMetrics,
  logger: SignetOptions['logger'],
  onRound: ReverifyLoopOptions['onRound'],
): ReverifyLoop | undefined {
  const settings = config.reverify;
  if (settings === undefined) return undefined;
  const reverifier = new Reverifier({
    ledger,
    logger,
    telemetry,
    ...(settings.webhookUrl !== undefined ? { sink: new WebhookSink(settings.webhookUrl) } : {}),
  });
  return new ReverifyLoop({
    reverifier,
    intervalMs: settings.intervalMs,
    logger,
    ...(onRound !== undefined ? { onRound } : {}),
    input: () => {
      const keys = new KeyRing({ witnesses: config.witnesses, baseDir: config.baseDir });
      return {
        verifier: new ImageVerifier({
          config,
          registries: signet.registries,
          keys,
          logger,
          signingTime: signingTimes(ledger),
        }),
        revocations: config.revocations,
        settings,
        dispose: () => keys.close(),
      };
    },
  });
}

/** A listen address as a URL host: `[::1]` for an IPv6 address. */
const hostForUrl = (host: string): string =>
  host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;

function safeDepth(journal: Journal): ReturnType<Journal['depth']> | undefined {
  try {
    return journal.depth();
  } catch {
    return undefined;
  }
}

function journalCheck(journal: Journal): { ok: boolean; reason?: string } {
  try {
    journal.depth();
    return { ok: true };
  } catch (err) {
    return { ok: false, reason: `the journal cannot be read: ${describeError(err)}` };
  }
}

function verificationAccess(config: SignetConfig): VerificationAccess {
  const { bearerToken, secretPath } = config.server;
  return {
    bearer: bearerToken === undefined ? undefined : secretDigest(bearerToken),
    secretPath,
    tokenInPath: false,
  };
}

/**
 * The status page's findings: the images admission let through with a warning (the recorder's)
 * and the admitted images re-verification found no longer trusted (the ledger's open findings),
 * newest first.
 */
function withLedgerFindings(status: StatusSource, ledger: SqliteLedger): StatusSource {
  return overlay(status, {
    findings: async (n) => {
      const [warned, lost] = await Promise.all([status.findings(n), ledger.findings()]);
      const found = lost.map((f): FindingRecord => ({
        at: f.lastFoundAt,
        image: f.reference.includes('@') ? f.reference : `${f.reference}@${f.digest}`,
        namespace: f.namespace === '' ? undefined : f.namespace,
        code: f.code,
        message: f.message,
        source: 'reverify',
      }));
      return [...found, ...warned].sort((a, b) => b.at - a.at).slice(0, n);
    },
  });
}
