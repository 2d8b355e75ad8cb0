/** `signet serve`: the local service, with the next steps printed for the person who started it. */
import { existsSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { loadConfigFile } from '../../lib/config/load';
import type { SignetConfig, SigningRule } from '../../lib/config/types';
import { ConfigError, InputError } from '../../lib/core/errors';
import type { Logger } from '../../lib/core/logger';
import { findRegistryBinary } from '../embedded-registry';
import { displayPath, invocation } from '../output';
import { startService } from '../serve';
import { EXIT } from '../spec';
import type { CommandContext } from './context';

/** The push helper `examples/` ships, suggested when it is there. */
const MAKE_TEST_IMAGE = 'examples/make-test-image.sh';

export async function serve(ctx: CommandContext): Promise<number> {
  const portFlag = ctx.flags.string('port');
  const port = portFlag !== undefined ? parsePort(portFlag) : undefined;
  const config = await loadConfigFile(ctx.configPath);
  // Before keys are made and ports taken: a missing registry binary is the commonest first error.
  if (config.registries.some((r) => r.embedded)) findRegistryBinary();
  // Listen for SIGINT/SIGTERM from the start: a signal during startup stops the service once up.
  const stopping = stopSignal(ctx.logger);
  try {
    let running;
    try {
      running = await startService(config, { logger: ctx.logger, ...(port !== undefined ? { port } : {}) });
    } catch (error) {
      throw portInUse(error, port === undefined ? 'server.port' : '--port') ?? error;
    }
    if (!ctx.json) {
      ctx.out.write(nextSteps(config, { url: running.url, configPath: ctx.configPath, cli: invocation() }));
    }
    await stopping.signalled;
    await running.stop();
  } finally {
    stopping.dispose();
  }
  return EXIT.ok;
}

function parsePort(value: string): number {
  const port = Number(value);
  if (!/^\d+$/.test(value) || !Number.isInteger(port) || port > 65535) {
    throw new InputError(
      'REQUEST_INVALID',
      '--port',
      `must be an integer between 0 and 65535, got "${value}"`,
    );
  }
  return port;
}

/** Node's EADDRINUSE from `listen`, as the ConfigError that says what to do about it. */
export function portInUse(error: unknown, setting: string): ConfigError | undefined {
  const e = error as (NodeJS.ErrnoException & Partial<Pick<AddressInfo, 'address' | 'port'>>) | undefined;
  if (e?.code !== 'EADDRINUSE') return undefined;
  const where = e.address !== undefined && e.port !== undefined ? `${e.address}:${e.port}` : 'the address';
  return new ConfigError(
    'PORT_IN_USE',
    `${where} is already in use (another signet serve?): stop what listens there, or change ${setting}`,
    { cause: error },
  );
}

/** Resolves `signalled` at the first SIGINT or SIGTERM; `dispose` stops listening. */
function stopSignal(logger: Logger): { signalled: Promise<void>; dispose: () => void } {
  let stop = (): void => undefined;
  const signalled = new Promise<void>((resolve) => {
    stop = (): void => {
      logger.info('shutting down');
      resolve();
    };
  });
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  return {
    signalled,
    dispose: () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
    },
  };
}

/** What the person who ran `signet serve` on a terminal does next: push, find the keys, verify. */
export function nextSteps(
  config: SignetConfig,
  context: { readonly url: string; readonly configPath: string; readonly cli: string },
): string {
  const { url, cli } = context;
  const configFlag = `--config ${displayPath(context.configPath)}`;
  const rows: [string, string][] = [];
  const rule = config.signingRules.find((r) => r.enabled && r.trigger === 'automatic');
  const covered = (host: string): boolean =>
    rule === undefined || rule.registries.length === 0 || rule.registries.includes(host);
  const registry =
    config.registries.find((r) => r.embedded && covered(r.host)) ??
    config.registries.find((r) => covered(r.host));
  const image =
    registry !== undefined && rule !== undefined
      ? `${registry.host}/${exampleRepository(rule)}:v1`
      : undefined;

  if (registry?.embedded === true) {
    rows.push(['registry', `${registry.host} (embedded, data in ${displayPath(registry.dataDir)})`]);
  } else if (registry !== undefined) {
    rows.push([
      'registry',
      `${registry.host}: point its notifications at ${url}/events/distribution with server.eventsToken`,
    ]);
  }
  if (image !== undefined) {
    const tls = registry?.insecure === true ? ' --dest-tls-verify=false' : '';
    rows.push(['push', `skopeo copy${tls} docker-archive:app.tar docker://${image}`]);
    if (registry?.embedded === true && existsSync(MAKE_TEST_IMAGE)) {
      rows.push(['', `no image at hand: ${MAKE_TEST_IMAGE} ${image}`]);
    }
  } else {
    rows.push(['push', 'no enabled automatic signing rule: pushes are not signed (add one to signingRules)']);
  }
  const keys = config.witnesses.flatMap((w) => {
    switch (w.key.$case) {
      case 'file':
        return [`${w.name}: ${displayPath(w.key.path)}`];
      case 'kms':
        return [`${w.name}: awskms ${w.key.keyId}`];
      case 'publicKeyFile':
      case 'publicKeyPem':
      case 'certificate':
      case 'keyless':
        return [];
    }
  });
  keys.forEach((key, i) => rows.push([i === 0 ? 'keys' : '', key]));
  const witness = rule?.witness ?? config.witnesses[0]?.name;
  if (witness !== undefined) {
    rows.push(['public key', `${cli} keys export ${witness} ${configFlag} > ${witness}.pub`]);
  }
  if (image !== undefined) {
    const namespace = config.policies.find((p) => p.enabled)?.namespaces.find((ns) => !/[*?]/.test(ns));
    const scope = namespace !== undefined ? ` --namespace ${namespace}` : '';
    rows.push(['verify', `${cli} verify ${image}${scope} ${configFlag}`]);
  }
  rows.push(['failures', `${cli} failures ${configFlag}`]);
  const width = Math.max(...rows.map(([label]) => label.length));
  return [
    `Signet is listening on ${url}`,
    '',
    'Next steps:',
    ...rows.map(([label, text]) => `  ${label.padEnd(width)}  ${text}`),
    '',
    'Logs follow on stderr as JSON lines. Ctrl-C stops.',
    '',
  ].join('\n');
}

/** A repository the rule covers: `team-a/app` for namespace `team-a`, `team-b/app` for `team-b/*`. */
function exampleRepository(rule: SigningRule): string {
  const namespace = rule.namespaces[0];
  if (namespace !== undefined) return `${namespace}/app`;
  const glob = rule.repositories[0] ?? 'app';
  return glob.replace(/\*\*/g, 'app').replace(/\*/g, 'app').replace(/\?/g, 'x');
}
