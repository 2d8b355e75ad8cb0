/**
 * Signet's configuration inside Lambda. The `SigningService` construct writes the YAML file, as
 * the user wrote it, into one SSM String parameter; each function reads it at cold start and
 * looks again at most every `configTtlSeconds` (`functions/env.ts`; default 60), so a `cdk deploy`
 * that changes only the configuration reaches warm functions within a minute without a cold start.
 *
 * The parameter is delivered verbatim (no rewriting at synth) so the text the Lambda parses is
 * the text `cdk synth` validated, and an error message's line numbers match the user's file.
 */
import { GetParameterCommand, type SSMClient } from '@aws-sdk/client-ssm';
import { parseConfig } from '../lib/config/load';
import type { SignetConfig } from '../lib/config/types';
import { ConfigError, describeError } from '../lib/core/errors';
import type { Logger } from '../lib/core/logger';

/** A configuration and whatever a function built from it (a `Signet`, a verifier). */
export interface Loaded<T> {
  readonly config: SignetConfig;
  readonly value: T;
  /** The SSM parameter version it came from. */
  readonly version: number | undefined;
}

/** How a `ParameterConfig` reads and builds. */
export interface ParameterConfigOptions<T> {
  readonly parameterName: string;
  readonly ttlSeconds: number;
  readonly ssm: Pick<SSMClient, 'send'>;
  /** Builds what the function runs on; called once per new parameter version. */
  readonly build: (config: SignetConfig) => T;
  readonly logger: Logger;
  /** Relative paths in the configuration resolve against this directory. */
  readonly baseDir: string;
  readonly env?: NodeJS.ProcessEnv;
  readonly now?: () => number;
}

/** Where a handler gets its configuration and what it built from it (a `ParameterConfig` when deployed). */
export interface ConfigSource<T> {
  get(): Promise<Loaded<T>>;
}

/**
 * The configuration of one Lambda execution environment, cached with a TTL. The first load must
 * succeed (its error is thrown, so the event is retried); a later refresh that fails (SSM
 * unreachable, or a parameter edited by hand into an invalid file) keeps the last good
 * configuration and logs the problem, because signing with the deployed rules beats not signing.
 */
export class ParameterConfig<T> implements ConfigSource<T> {
  private current: Loaded<T> | undefined;
  private checkedAt = Number.NEGATIVE_INFINITY;
  private pending: Promise<Loaded<T>> | undefined;
  private readonly now: () => number;

  constructor(private readonly options: ParameterConfigOptions<T>) {
    this.now = options.now ?? Date.now;
  }

  /** The current configuration, refreshed when the TTL has passed. */
  get(): Promise<Loaded<T>> {
    const current = this.current;
    if (current !== undefined && this.now() - this.checkedAt < this.options.ttlSeconds * 1000) {
      return Promise.resolve(current);
    }
    this.pending ??= this.refresh().finally(() => {
      this.pending = undefined;
    });
    return this.pending;
  }

  private async refresh(): Promise<Loaded<T>> {
    const previous = this.current;
    try {
      const { text, version } = await this.read();
      this.checkedAt = this.now();
      if (previous !== undefined && version !== undefined && version === previous.version) return previous;
      const config = this.parse(text);
      const loaded: Loaded<T> = { config, value: this.options.build(config), version };
      this.current = loaded;
      this.options.logger.info('configuration loaded', {
        parameter: this.options.parameterName,
        version,
        signingRules: config.signingRules.length,
        policies: config.policies.length,
      });
      return loaded;
    } catch (error) {
      if (previous === undefined) throw error;
      // Keep serving the last good configuration; look again after another TTL.
      this.checkedAt = this.now();
      this.options.logger.error('configuration refresh failed; keeping the previous version', {
        parameter: this.options.parameterName,
        version: previous.version,
        cause: describeError(error),
      });
      return previous;
    }
  }

  /** Parses the text; errors keep their code and issues and name the parameter. */
  private parse(text: string): SignetConfig {
    try {
      // No `source`: it is a file path, and this text comes from a parameter.
      return parseConfig(text, { baseDir: this.options.baseDir, env: this.options.env ?? process.env });
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      throw new ConfigError(error.code, `SSM parameter ${this.options.parameterName}: ${error.message}`, {
        cause: error,
        issues: error.issues,
      });
    }
  }

  private async read(): Promise<{ text: string; version: number | undefined }> {
    const name = this.options.parameterName;
    let out;
    try {
      out = await this.options.ssm.send(new GetParameterCommand({ Name: name }));
    } catch (error) {
      throw new ConfigError(
        'CONFIG_UNREADABLE',
        `cannot read the configuration parameter ${name}: ${describeError(error)}`,
        { cause: error },
      );
    }
    const text = out.Parameter?.Value;
    if (text === undefined) {
      throw new ConfigError('CONFIG_UNREADABLE', `the configuration parameter ${name} has no value`);
    }
    return { text, version: out.Parameter?.Version };
  }
}
