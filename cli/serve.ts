import { checkConfig } from '../lib/config/check';
import { loadConfigFile } from '../lib/config/load';
import type { SignetConfig } from '../lib/config/types';
import type { Logger } from '../lib/core/logger';
import { ensureLocalKeys } from '../lib/keys/provision';
import { createSignet, type Signet, type SignetOptions } from '../lib/signet';
import { startEmbeddedRegistry, type EmbeddedRegistry } from './embedded-registry';
import { SignetService } from './server';
import { registerVerificationRoutes } from './verify-routes';

/** A running local service, with the embedded registry when the config asks for one. */
export interface RunningService {
  readonly url: string;
  readonly port: number;
  readonly signet: Signet;
  readonly service: SignetService;
  readonly registry: EmbeddedRegistry | undefined;
  stop(): Promise<void>;
}

/**
 * Starts Signet locally: local keys created when missing, the HTTP service, and then the embedded
 * registry (after the service, so the registry's first notification finds Signet listening).
 */
export async function startService(
  config: SignetConfig,
  options: SignetOptions & { port?: number },
): Promise<RunningService> {
  const logger = options.logger;
  await ensureLocalKeys(config, logger);
  for (const warning of checkConfig(config).warnings) logger.warn('config', { warning });
  const signet = createSignet(config, options);
  const service = new SignetService({ config, pipeline: signet.pipeline, logger });
  registerVerificationRoutes(service, { server: config.server, verifier: signet.verifier, logger });
  const address = await service.listen(options.port ?? config.server.port, config.server.host);
  const url = `http://${config.server.host}:${address.port}`;
  let registry: EmbeddedRegistry | undefined;
  const embedded = config.registries.find((r) => r.embedded);
  try {
    if (embedded !== undefined) {
      registry = await startEmbeddedRegistry({
        host: embedded.host,
        dataDir: embedded.dataDir,
        notifyUrl: `${url}/events/distribution`,
      });
      logger.info('embedded registry started', { registry: embedded.host, dataDir: embedded.dataDir });
    }
  } catch (error) {
    await service.close();
    throw error;
  }
  logger.info('signet listening', {
    url,
    rules: config.signingRules.length,
    policies: config.policies.length,
  });
  return {
    url,
    port: address.port,
    signet,
    service,
    registry,
    async stop() {
      await registry?.stop();
      await service.close();
    },
  };
}

/** `signet serve`: runs until SIGINT or SIGTERM. */
export async function serve(options: {
  configPath: string;
  port: number | undefined;
  logger: Logger;
}): Promise<void> {
  const config = await loadConfigFile(options.configPath);
  const running = await startService(config, {
    logger: options.logger,
    ...(options.port !== undefined ? { port: options.port } : {}),
  });
  await new Promise<void>((resolve) => {
    const stop = () => {
      options.logger.info('shutting down');
      void running.stop().then(resolve);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
}
