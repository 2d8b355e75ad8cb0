import { randomBytes } from 'node:crypto';
import { checkConfig } from '../lib/config/check';
import type { SignetConfig } from '../lib/config/types';
import { eventSender, secretDigest, type EventSender, type VerificationAccess } from '../lib/http/auth';
import { InFlightLimit, type SurfaceDeps } from '../lib/http/surface';
import { AdmissionController } from '../lib/admission/controller';
import { Journal } from '../lib/journal';
import { preflight } from '../lib/keys/preflight';
import { ensureLocalKeys } from '../lib/keys/provision';
import { DurableSigning, type DurableSigningDeps } from '../lib/signing/durable';
import { createSignet, type Signet, type SignetOptions } from '../lib/signet';
import { startEmbeddedRegistry, type EmbeddedRegistry } from './embedded-registry';
import { SignetServer } from './server';

/** A running local service, with the embedded registry when the config asks for one. */
export interface RunningService {
  readonly url: string;
  readonly port: number;
  readonly signet: Signet;
  readonly server: SignetServer;
  readonly journal: Journal;
  readonly signing: DurableSigning;
  readonly registry: EmbeddedRegistry | undefined;
  /** The bearer token the embedded registry delivers events with (tests deliver with it too). */
  readonly embeddedEventsToken: string | undefined;
  stop(): Promise<void>;
}

/** How long a stop waits for signings in flight before leaving them to the next start. */
const STOP_GRACE_MS = 10_000;

/**
 * Starts Signet locally: local keys created when missing, the configuration checked against the
 * keys (a rule that cannot sign refuses to start), the journal opened (pushes a previous run
 * accepted are signed again), the HTTP service, and then the embedded registry (after the service,
 * so the registry's first notification finds Signet listening).
 */
export async function startService(
  config: SignetConfig,
  options: SignetOptions & {
    port?: number;
    /** Told about every signing attempt from the journal (tests, metrics). */
    onSigningReport?: DurableSigningDeps['onReport'];
  },
): Promise<RunningService> {
  const logger = options.logger;
  await ensureLocalKeys(config, logger);
  for (const warning of checkConfig(config).warnings) logger.warn('config', { warning });
  const signet = createSignet(config, options);
  await preflight(config, signet.keys, logger);

  const journal = Journal.open(config.journal.path);
  const signing = new DurableSigning({
    pipeline: signet.pipeline,
    journal,
    settings: config.journal,
    logger,
    ...(options.onSigningReport !== undefined ? { onReport: options.onSigningReport } : {}),
  });
  const embedded = config.registries.find((r) => r.embedded);
  // The embedded registry gets a token of its own, good for events about its own host only.
  const embeddedEventsToken = embedded !== undefined ? randomBytes(32).toString('hex') : undefined;
  const senders: EventSender[] = [];
  if (config.server.eventsToken !== undefined)
    senders.push(eventSender('events token', config.server.eventsToken));
  if (embedded !== undefined && embeddedEventsToken !== undefined)
    senders.push(eventSender('embedded registry', embeddedEventsToken, [embedded.host]));

  const surface: SurfaceDeps = {
    logger,
    maxBodyBytes: config.server.maxBodyBytes,
    limit: new InFlightLimit(config.server.maxInFlight),
    verification: {
      access: verificationAccess(config),
      verifier: signet.verifier,
      controller: new AdmissionController({ verifier: signet.verifier, logger }),
    },
    events: {
      senders,
      isConfigured: (host) => config.registries.some((r) => r.host === host),
      intake: signing,
    },
  };
  const server = new SignetServer(surface);
  let address;
  try {
    address = await server.listen(options.port ?? config.server.port, config.server.host);
  } catch (error) {
    journal.close();
    throw error;
  }
  const url = `http://${config.server.host}:${address.port}`;
  signing.start();
  let registry: EmbeddedRegistry | undefined;
  try {
    if (embedded !== undefined) {
      registry = await startEmbeddedRegistry({
        host: embedded.host,
        dataDir: embedded.dataDir,
        notifyUrl: `${url}/events/distribution`,
        ...(embeddedEventsToken !== undefined ? { notifyToken: embeddedEventsToken } : {}),
      });
      logger.info('embedded registry started', { registry: embedded.host, dataDir: embedded.dataDir });
    }
  } catch (error) {
    await signing.stop(0);
    await server.close();
    journal.close();
    throw error;
  }
  const depth = journal.depth();
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
    port: address.port,
    signet,
    server,
    journal,
    signing,
    registry,
    embeddedEventsToken,
    stop() {
      stopping ??= (async () => {
        await registry?.stop();
        await server.close();
        await signing.stop(STOP_GRACE_MS);
        journal.close();
      })();
      return stopping;
    },
  };
}

function verificationAccess(config: SignetConfig): VerificationAccess {
  const { bearerToken, secretPath } = config.server;
  return {
    bearer: bearerToken === undefined ? undefined : secretDigest(bearerToken),
    secretPath,
    tokenInPath: false,
  };
}
