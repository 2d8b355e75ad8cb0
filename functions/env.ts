/**
 * Signet's environment contract: every `SIGNET_*` variable, who writes it and who reads it.
 *
 * - The `SigningService` construct writes each function's variables with `signEnvironment`,
 *   `verifyEnvironment` and `failureEnvironment`; each handler reads them back, once, at cold
 *   start, with `readSignEnv`, `readVerifyEnv` and `readFailureEnv`. Writer and reader share one
 *   typed shape, so a variable the construct stops setting is a type error, not a cold-start crash.
 * - `signet replay` reads the sign function's registry host with `readRegistryHost`.
 * - The CDK app's settings (`APP_ENV`) are read by `cdk/app.ts`.
 *
 * This file imports neither Powertools nor the AWS SDK: `cdk/` and `cli/` import it.
 */
import { ConfigError, type FieldIssue } from '../lib/core/errors';

/** The variables the construct sets on the functions (which function reads which: see the readers). */
export const FUNCTION_ENV = {
  /** Name of the SSM String parameter holding the YAML configuration (sign, verify). */
  configParameter: 'SIGNET_CONFIG_PARAMETER',
  /** Seconds between checks for a new parameter version; default 60, 0 checks on every event. */
  configTtlSeconds: 'SIGNET_CONFIG_TTL_SECONDS',
  /**
   * Name or ARN of the bus that receives `Image Signed` and `Image Not Signed` (sign) and
   * `Image Signing Failed` (failure).
   */
  eventBus: 'SIGNET_EVENT_BUS',
  /** URL of the dead-letter queue (failure). */
  deadLetterQueue: 'SIGNET_DLQ_URL',
  /**
   * Registry host written for ECR pushes instead of `<account>.dkr.ecr.<region>.amazonaws.com`
   * (sign, failure; and `signet replay`'s default `--registry-host`): for clusters that pull through
   * another name of the same registry (the dual-stack `<account>.dkr-ecr.<region>.on.aws`), or a
   * local stand-in registry in tests. The payload's `docker-reference` names this host.
   */
  registryHost: 'SIGNET_ECR_REGISTRY_HOST',
  /** ARN or name of the Secrets Manager secret holding the verify endpoint's token (verify). */
  tokenSecret: 'SIGNET_TOKEN_SECRET',
  /** Name of the DynamoDB ledger table (sign: signatures; verify: decisions; reverify: findings). */
  ledgerTable: 'SIGNET_LEDGER_TABLE',
} as const;

/**
 * Settings of the CDK app (`cdk/app.ts`); each is also a context key `signet:<key>`, which wins.
 * `SIGNET_CONFIG` is also the CLI's default `--config`.
 */
export const APP_ENV = {
  config: 'SIGNET_CONFIG',
  repositories: 'SIGNET_REPOSITORIES',
  registryNamespaces: 'SIGNET_REGISTRY_NAMESPACES',
  keys: 'SIGNET_KEYS',
  alarmEmail: 'SIGNET_ALARM_EMAIL',
  stackName: 'SIGNET_STACK_NAME',
} as const;

/** Set by the Lambda runtime: the function's code directory. */
const TASK_ROOT = 'LAMBDA_TASK_ROOT';

export const DEFAULT_CONFIG_TTL_SECONDS = 60;

/** What the sign function runs with. */
export interface SignFunctionEnv {
  readonly configParameter: string;
  readonly configTtlSeconds: number;
  readonly eventBus: string;
  readonly registryHost: string | undefined;
  /** Where signatures are recorded; undefined: not recorded (a deployment without a ledger). */
  readonly ledgerTable?: string | undefined;
  /** Relative paths in the configuration resolve here (the function's code directory). */
  readonly baseDir: string;
}

/** What the verify function runs with. */
export interface VerifyFunctionEnv {
  readonly configParameter: string;
  readonly configTtlSeconds: number;
  readonly tokenSecret: string;
  /** Where decisions are recorded; undefined: not recorded (a deployment without a ledger). */
  readonly ledgerTable?: string | undefined;
  /** Relative paths in the configuration resolve here (the function's code directory). */
  readonly baseDir: string;
}

/** What the re-verification function (scheduled) runs with. */
export interface ReverifyFunctionEnv {
  readonly configParameter: string;
  readonly configTtlSeconds: number;
  /** Receives `Image Trust Lost`. */
  readonly eventBus: string;
  readonly ledgerTable: string;
  /** Relative paths in the configuration resolve here (the function's code directory). */
  readonly baseDir: string;
}

/** What the failure function (the sign function's on-failure destination) runs with. */
export interface FailureFunctionEnv {
  readonly eventBus: string;
  readonly deadLetterQueue: string;
  readonly registryHost: string | undefined;
}

/** What the construct writes: the readers' shapes without what the runtime provides. */
export type SignEnvironmentValues = Omit<SignFunctionEnv, 'baseDir'>;
export type VerifyEnvironmentValues = Omit<VerifyFunctionEnv, 'baseDir'>;
export type ReverifyEnvironmentValues = Omit<ReverifyFunctionEnv, 'baseDir'>;
export type FailureEnvironmentValues = FailureFunctionEnv;

/** The sign function's environment variables. */
export function signEnvironment(values: SignEnvironmentValues): Record<string, string> {
  return variables({
    [FUNCTION_ENV.configParameter]: values.configParameter,
    [FUNCTION_ENV.configTtlSeconds]: String(values.configTtlSeconds),
    [FUNCTION_ENV.eventBus]: values.eventBus,
    [FUNCTION_ENV.registryHost]: values.registryHost,
    [FUNCTION_ENV.ledgerTable]: values.ledgerTable,
  });
}

/** The verify function's environment variables. */
export function verifyEnvironment(values: VerifyEnvironmentValues): Record<string, string> {
  return variables({
    [FUNCTION_ENV.configParameter]: values.configParameter,
    [FUNCTION_ENV.configTtlSeconds]: String(values.configTtlSeconds),
    [FUNCTION_ENV.tokenSecret]: values.tokenSecret,
    [FUNCTION_ENV.ledgerTable]: values.ledgerTable,
  });
}

/** The re-verification function's environment variables. */
export function reverifyEnvironment(values: ReverifyEnvironmentValues): Record<string, string> {
  return variables({
    [FUNCTION_ENV.configParameter]: values.configParameter,
    [FUNCTION_ENV.configTtlSeconds]: String(values.configTtlSeconds),
    [FUNCTION_ENV.eventBus]: values.eventBus,
    [FUNCTION_ENV.ledgerTable]: values.ledgerTable,
  });
}

/** The failure function's environment variables. */
export function failureEnvironment(values: FailureEnvironmentValues): Record<string, string> {
  return variables({
    [FUNCTION_ENV.eventBus]: values.eventBus,
    [FUNCTION_ENV.deadLetterQueue]: values.deadLetterQueue,
    [FUNCTION_ENV.registryHost]: values.registryHost,
  });
}

/** Reads the sign function's environment; every missing or bad variable is named in one error. */
export function readSignEnv(env: NodeJS.ProcessEnv): SignFunctionEnv {
  const read = new EnvReader(env);
  const value: SignFunctionEnv = {
    configParameter: read.required('configParameter'),
    configTtlSeconds: read.ttlSeconds(),
    eventBus: read.required('eventBus'),
    registryHost: read.optional('registryHost'),
    ledgerTable: read.optional('ledgerTable'),
    baseDir: read.baseDir(),
  };
  return read.done(value);
}

/** Reads the verify function's environment; every missing or bad variable is named in one error. */
export function readVerifyEnv(env: NodeJS.ProcessEnv): VerifyFunctionEnv {
  const read = new EnvReader(env);
  const value: VerifyFunctionEnv = {
    configParameter: read.required('configParameter'),
    configTtlSeconds: read.ttlSeconds(),
    tokenSecret: read.required('tokenSecret'),
    ledgerTable: read.optional('ledgerTable'),
    baseDir: read.baseDir(),
  };
  return read.done(value);
}

/** Reads the re-verification function's environment; every missing or bad variable is named in one error. */
export function readReverifyEnv(env: NodeJS.ProcessEnv): ReverifyFunctionEnv {
  const read = new EnvReader(env);
  const value: ReverifyFunctionEnv = {
    configParameter: read.required('configParameter'),
    configTtlSeconds: read.ttlSeconds(),
    eventBus: read.required('eventBus'),
    ledgerTable: read.required('ledgerTable'),
    baseDir: read.baseDir(),
  };
  return read.done(value);
}

/** Reads the failure function's environment; every missing or bad variable is named in one error. */
export function readFailureEnv(env: NodeJS.ProcessEnv): FailureFunctionEnv {
  const read = new EnvReader(env);
  const value: FailureFunctionEnv = {
    eventBus: read.required('eventBus'),
    deadLetterQueue: read.required('deadLetterQueue'),
    registryHost: read.optional('registryHost'),
  };
  return read.done(value);
}

/** The sign function's registry host, if set (`signet replay` signs for the same host). */
export function readRegistryHost(env: NodeJS.ProcessEnv): string | undefined {
  return new EnvReader(env).optional('registryHost');
}

/** The configuration TTL: a non-negative number of seconds, else the default. */
export function readConfigTtlSeconds(env: NodeJS.ProcessEnv): number {
  const read = new EnvReader(env);
  return read.done(read.ttlSeconds());
}

/** Collects every problem of one environment before throwing (a deployment fixes them at once). */
class EnvReader {
  private readonly issues: FieldIssue[] = [];

  constructor(private readonly env: NodeJS.ProcessEnv) {}

  required(key: keyof typeof FUNCTION_ENV): string {
    const name = FUNCTION_ENV[key];
    const value = this.optional(key);
    if (value === undefined) {
      this.issues.push({ path: name, message: 'is not set (the SigningService construct sets it)' });
      return '';
    }
    return value;
  }

  optional(key: keyof typeof FUNCTION_ENV): string | undefined {
    return this.env[FUNCTION_ENV[key]]?.trim() || undefined;
  }

  ttlSeconds(): number {
    const name = FUNCTION_ENV.configTtlSeconds;
    const raw = this.env[name];
    if (raw === undefined || raw.trim() === '') return DEFAULT_CONFIG_TTL_SECONDS;
    const value = Number(raw);
    if (!Number.isFinite(value) || value < 0) {
      this.issues.push({
        path: name,
        message: `must be a number of seconds (0 or more), got ${JSON.stringify(raw)}`,
      });
      return DEFAULT_CONFIG_TTL_SECONDS;
    }
    return value;
  }

  baseDir(): string {
    return this.env[TASK_ROOT]?.trim() || process.cwd();
  }

  done<T>(value: T): T {
    if (this.issues.length === 0) return value;
    const list = this.issues.map((issue) => `${issue.path} ${issue.message}`).join('; ');
    throw new ConfigError('CONFIG_INVALID', `environment: ${list}`, { issues: this.issues });
  }
}

function variables(entries: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(entries)) if (value !== undefined) out[name] = value;
  return out;
}

/** `service` in every log line, and the dimension of every EMF metric (Powertools adds it). */
export const SERVICE_NAME = 'signet';
/** CloudWatch namespace of Signet's EMF metrics (the construct's dashboard and alarms read it). */
export const METRICS_NAMESPACE = 'Signet';

/** The EMF metrics the functions emit, by name (the construct's dashboard plots them). */
export const FUNCTION_METRICS = {
  signed: 'Signed',
  skipped: 'Skipped',
  failed: 'Failed',
  /** Rules whose conditions did not hold for a push (each an `Image Not Signed` event). */
  notSigned: 'NotSigned',
  /** Rules whose push waits for its scan result (decided when the scan event arrives). */
  scanWaiting: 'ScanWaiting',
  invalidEvents: 'InvalidEvents',
  signingLatency: 'SigningLatency',
  signingGaveUp: 'SigningGaveUp',
  admitted: 'Admitted',
  denied: 'Denied',
  admissionLatency: 'AdmissionLatency',
  verifyErrors: 'VerifyErrors',
  verifyRefused: 'VerifyRefused',
  /** Ledger writes that failed (sign, verify, reverify); the work itself was not affected. */
  ledgerWriteFailed: 'LedgerWriteFailed',
  /** Admitted images re-verified and still trusted. */
  reverifyTrusted: 'ReverifyTrusted',
  /** Admitted images that could not be re-verified this round (registry or KMS outage). */
  reverifyUnverifiable: 'ReverifyUnverifiable',
  /** Findings opened: admitted images no longer trusted (`Image Trust Lost`). */
  trustLost: 'TrustLost',
} as const;
