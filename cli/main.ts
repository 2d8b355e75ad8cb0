import { parseArgs } from 'node:util';
import { checkConfig } from '../lib/config/check';
import { loadConfigFile } from '../lib/config/load';
import type { SignetConfig } from '../lib/config/types';
import { ConfigError, InputError, SignetError, describeError } from '../lib/core/errors';
import { jsonLogger, type LogLevel } from '../lib/core/logger';
import { parseReference } from '../lib/core/reference';
import { exportPublicKeyPem, generateKeyFile, type KeySpec } from '../lib/keys/generate';
import { ensureLocalKeys } from '../lib/keys/provision';
import { reportFailed } from '../lib/signing/pipeline';
import { createSignet } from '../lib/signet';
import { inspectKeys } from '../lib/keys/preflight';
import { failuresTable, listFailures, replayLocal } from './journal-commands';
import { replayCommand, replayDeadLetters, replayExitCode } from './replay';
import { serve } from './serve';

const USAGE = `Usage: signet <command> [options]

Commands:
  serve   --config FILE [--port N]         run the local service (push events in, signatures out)
  sign    IMAGE [--rule NAME] --config FILE sign an image already in the registry
  verify  IMAGE [--namespace NS] [--cluster C] --config FILE
                                           decide an image against the policies (JSON; exit 1 on deny)
  replay  --queue URL [--max N] [--dry-run] [--endpoint URL] [--registry-host HOST] --config FILE
                                           re-deliver the AWS dead-letter queue: sign each message's
                                           ECR push, delete it once signed (JSON; exit 1 if any stays)
  replay  --local [--id ID] --config FILE  re-drive the local service's dead letters (exit 1 if any fails again)
  failures [--id ID] [--json] --config FILE
                                           list the local service's dead letters
  keys generate [--config FILE] [--out FILE --type SPEC]
                                           create missing local keys of a config, or one key file
  keys export WITNESS --config FILE        print a witness's public key (PEM) for cosign/Kyverno
  config check FILE                        validate a config and print advice

Options:
  --config FILE   config file (default: $SIGNET_CONFIG or ./signet.yaml)
  --log-level L   debug | info | warn | error (default: info)
Key specs: rsa-2048, rsa-3072, rsa-4096, ec-p256, ec-p384
Replay options:
  --queue URL           the dead-letter queue (https://sqs.<region>.amazonaws.com/<account>/<name>)
  --max N               receive at most N messages (default: until none is visible)
  --dry-run             read and report only; sign and delete nothing
  --endpoint URL        the SQS endpoint (default: the SDK's)
  --registry-host HOST  the sign function's registryHost (default: $SIGNET_ECR_REGISTRY_HOST)
`;

const KEY_SPECS: readonly KeySpec[] = ['rsa-2048', 'rsa-3072', 'rsa-4096', 'ec-p256', 'ec-p384'];

/** Exit codes: 0 ok, 1 the operation failed (deny, signing failure), 2 usage or config error. */
export async function main(
  argv: readonly string[],
  out = process.stdout,
  err = process.stderr,
): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    strict: true,
    options: {
      config: { type: 'string' },
      port: { type: 'string' },
      rule: { type: 'string' },
      out: { type: 'string' },
      type: { type: 'string' },
      namespace: { type: 'string' },
      cluster: { type: 'string' },
      queue: { type: 'string' },
      max: { type: 'string' },
      'dry-run': { type: 'boolean' },
      endpoint: { type: 'string' },
      'registry-host': { type: 'string' },
      'log-level': { type: 'string' },
      local: { type: 'boolean' },
      id: { type: 'string', multiple: true },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const [command, sub, ...rest] = positionals;
  if (values.help === true || command === undefined) {
    out.write(USAGE);
    return command === undefined && values.help !== true ? 2 : 0;
  }
  const logger = jsonLogger((values['log-level'] ?? 'info') as LogLevel);
  const configPath = values.config ?? process.env.SIGNET_CONFIG ?? 'signet.yaml';
  const print = (value: unknown) => out.write(`${JSON.stringify(value, null, 2)}\n`);

  switch (command) {
    case 'serve': {
      const port = values.port !== undefined ? parsePort(values.port) : undefined;
      await serve({ configPath, port, logger });
      return 0;
    }
    case 'sign': {
      if (sub === undefined)
        throw new InputError('REQUEST_INVALID', 'IMAGE', 'is required: signet sign IMAGE');
      const config = await loadConfigFile(configPath);
      await ensureLocalKeys(config, logger);
      const signet = createSignet(config, { logger });
      const report = await signet.pipeline.signImage(parseReference(sub, 'IMAGE'), values.rule);
      print(report);
      return reportFailed(report) || (report.skipped !== undefined && values.rule !== undefined) ? 1 : 0;
    }
    // verify: added by the verification engineer.
    case 'verify': {
      if (sub === undefined)
        throw new InputError('REQUEST_INVALID', 'IMAGE', 'is required: signet verify IMAGE');
      const config = await loadConfigFile(configPath);
      const signet = createSignet(config, { logger });
      const scope = { namespace: values.namespace, cluster: values.cluster };
      const decision = await signet.verifier.verifyWithin(sub, scope, 'IMAGE');
      print(decision);
      return decision.allowed ? 0 : 1;
    }
    case 'failures': {
      const config = await loadConfigFile(configPath);
      const ids = values.id ?? [];
      const failures = ids.length > 0 ? ids.flatMap((id) => listFailures(config, id)) : listFailures(config);
      if (values.json === true) print(failures);
      else out.write(failuresTable(failures));
      return 0;
    }
    case 'replay': {
      if (values.local === true) {
        if (values.queue !== undefined)
          throw new InputError(
            'REQUEST_INVALID',
            '--local',
            'replays the local journal; it takes no --queue',
          );
        const config = await loadConfigFile(configPath);
        const summary = await replayLocal(config, values.id, logger);
        print(summary);
        return summary.failed.length > 0 ? 1 : 0;
      }
      if (sub !== undefined)
        throw new InputError(
          'REQUEST_INVALID',
          'replay',
          `takes no arguments, got "${sub}": use --queue URL`,
        );
      const command = replayCommand(values);
      const config = await loadConfigFile(configPath);
      const summary = await replayDeadLetters(command, { config, logger });
      print(summary);
      return replayExitCode(summary);
    }
    case 'keys': {
      if (sub === 'generate') return keysGenerate(values, configPath, out, logger);
      if (sub === 'export') {
        const witness = rest[0];
        if (witness === undefined)
          throw new InputError('REQUEST_INVALID', 'WITNESS', 'is required: signet keys export WITNESS');
        const config = await loadConfigFile(configPath);
        const signet = createSignet(config, { logger });
        out.write(await exportPublicKeyPem(signet.keys.get(witness)));
        return 0;
      }
      throw new InputError(
        'REQUEST_INVALID',
        'keys',
        `unknown subcommand "${sub ?? ''}": use generate or export`,
      );
    }
    case 'config': {
      if (sub !== 'check')
        throw new InputError('REQUEST_INVALID', 'config', `unknown subcommand "${sub ?? ''}": use check`);
      const file = rest[0] ?? configPath;
      const config = await loadConfigFile(file);
      const { warnings } = checkConfig(config);
      for (const warning of warnings) err.write(`warning: ${warning}\n`);
      // The keys too: a rule whose algorithm does not fit its key cannot sign anything.
      const signet = createSignet(config, { logger });
      const keys = await inspectKeys(config, signet.keys, { missingFiles: 'skip' });
      signet.keys.close();
      for (const { witness, reason } of keys.unchecked)
        err.write(`warning: witness "${witness}": key not checked: ${reason}\n`);
      if (keys.issues.length > 0) {
        err.write(`${file}: the configuration cannot work with its keys\n`);
        for (const issue of keys.issues) err.write(`  ${issue.path}: ${issue.message}\n`);
        return 2;
      }
      out.write(`${file}: OK (${summary(config)})\n`);
      return 0;
    }
    default:
      err.write(`signet: unknown command "${command}"\n\n${USAGE}`);
      return 2;
  }
}

async function keysGenerate(
  values: { out?: string; type?: string },
  configPath: string,
  out: NodeJS.WritableStream,
  logger: ReturnType<typeof jsonLogger>,
): Promise<number> {
  if (values.out !== undefined) {
    const spec = (values.type ?? 'ec-p256') as KeySpec;
    if (!KEY_SPECS.includes(spec)) {
      throw new InputError('REQUEST_INVALID', '--type', `must be one of ${KEY_SPECS.join(', ')}`);
    }
    const keyId = await generateKeyFile(values.out, spec);
    out.write(`${values.out}: ${spec} ${keyId}\n`);
    return 0;
  }
  const config = await loadConfigFile(configPath);
  const created = await ensureLocalKeys(config, logger);
  for (const key of created) out.write(`${key.witness}: created ${key.path} (${key.spec}) ${key.keyId}\n`);
  if (created.length === 0) out.write('every local key already exists\n');
  return 0;
}

function parsePort(value: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new InputError('REQUEST_INVALID', '--port', 'must be an integer between 0 and 65535');
  }
  return port;
}

function summary(config: SignetConfig): string {
  return [
    `${config.registries.length} registries`,
    `${config.witnesses.length} witnesses`,
    `${config.signingRules.length} signing rules`,
    `${config.policies.length} policies`,
  ].join(', ');
}

/** Prints an error the way a user can act on it: config issues one per line. */
export function reportError(error: unknown, err: NodeJS.WritableStream = process.stderr): number {
  if (error instanceof ConfigError && error.issues.length > 0) {
    err.write(`signet: ${error.code}\n`);
    for (const issue of error.issues) err.write(`  ${issue.path}: ${issue.message}\n`);
    return 2;
  }
  if (error instanceof SignetError) {
    err.write(`signet: ${error.code}: ${error.message}\n`);
    return error instanceof ConfigError || error instanceof InputError ? 2 : 1;
  }
  if ((error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS') === true) {
    err.write(`signet: ${describeError(error)}\n\n${USAGE}`);
    return 2;
  }
  err.write(`signet: ${describeError(error)}\n`);
  return 1;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      process.exitCode = reportError(error);
    },
  );
}
