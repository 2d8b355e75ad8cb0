/**
 * The environment contract between the construct and the functions: what `signEnvironment` & co.
 * write, `readSignEnv` & co. read back; a missing or bad variable is a ConfigError naming every
 * one at once; and a function's module imports without any of them set, its handler then failing
 * each invocation with that error.
 */
import {
  DEFAULT_CONFIG_TTL_SECONDS,
  FUNCTION_ENV,
  failureEnvironment,
  readConfigTtlSeconds,
  readFailureEnv,
  readRegistryHost,
  readSignEnv,
  readVerifyEnv,
  signEnvironment,
  verifyEnvironment,
} from '../../functions/env';
import { ConfigError } from '../../lib/core/errors';
import { lambdaContext } from '../support/lambda-harness';

const BUS = 'arn:aws:events:us-east-1:111122223333:event-bus/signet';

describe('what the construct writes', () => {
  it('is what each function reads back', () => {
    const sign = {
      configParameter: '/signet/config',
      configTtlSeconds: 30,
      eventBus: BUS,
      registryHost: 'r.example',
    };
    expect(readSignEnv({ ...signEnvironment(sign), LAMBDA_TASK_ROOT: '/var/task' })).toEqual({
      ...sign,
      baseDir: '/var/task',
    });
    const verify = { configParameter: '/signet/config', configTtlSeconds: 0, tokenSecret: 'arn:secret' };
    expect(readVerifyEnv({ ...verifyEnvironment(verify), LAMBDA_TASK_ROOT: '/var/task' })).toEqual({
      ...verify,
      baseDir: '/var/task',
    });
    const failure = { eventBus: BUS, deadLetterQueue: 'https://sqs.example/1/q', registryHost: undefined };
    expect(readFailureEnv(failureEnvironment(failure))).toEqual(failure);
  });

  it('leaves out an optional variable that has no value', () => {
    const written = signEnvironment({
      configParameter: '/p',
      configTtlSeconds: 60,
      eventBus: BUS,
      registryHost: undefined,
    });
    expect(Object.keys(written).sort()).toEqual(
      [FUNCTION_ENV.configParameter, FUNCTION_ENV.configTtlSeconds, FUNCTION_ENV.eventBus].sort(),
    );
  });
});

describe('when variables are missing or bad', () => {
  it('names every one in one CONFIG_INVALID error', () => {
    let error: unknown;
    try {
      readSignEnv({ [FUNCTION_ENV.configTtlSeconds]: 'soon', [FUNCTION_ENV.eventBus]: '  ' });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).code).toBe('CONFIG_INVALID');
    expect((error as ConfigError).issues.map((issue) => issue.path)).toEqual([
      FUNCTION_ENV.configParameter,
      FUNCTION_ENV.configTtlSeconds,
      FUNCTION_ENV.eventBus,
    ]);
  });

  it('refuses a TTL that is not a number of seconds', () => {
    for (const raw of ['soon', '-1', 'Infinity'])
      expect(() => readConfigTtlSeconds({ [FUNCTION_ENV.configTtlSeconds]: raw })).toThrowWithCode(
        ConfigError,
        'CONFIG_INVALID',
      );
  });
});

describe('the configuration TTL', () => {
  it('defaults to 60 and reads whole or fractional seconds', () => {
    expect(readConfigTtlSeconds({})).toBe(DEFAULT_CONFIG_TTL_SECONDS);
    expect(readConfigTtlSeconds({ [FUNCTION_ENV.configTtlSeconds]: ' ' })).toBe(60);
    expect(readConfigTtlSeconds({ [FUNCTION_ENV.configTtlSeconds]: '5' })).toBe(5);
    expect(readConfigTtlSeconds({ [FUNCTION_ENV.configTtlSeconds]: '0.5' })).toBe(0.5);
  });
});

describe('the registry host signet replay defaults to', () => {
  it('is the sign function variable, trimmed, or none', () => {
    expect(readRegistryHost({ [FUNCTION_ENV.registryHost]: ' r.example:5000 ' })).toBe('r.example:5000');
    expect(readRegistryHost({ [FUNCTION_ENV.registryHost]: '' })).toBeUndefined();
    expect(readRegistryHost({})).toBeUndefined();
  });
});

describe.each(['sign', 'verify', 'failure'] as const)('the %s module without its environment', (name) => {
  const saved = { ...process.env };
  beforeAll(() => {
    for (const variable of Object.values(FUNCTION_ENV)) delete process.env[variable];
  });
  afterAll(() => {
    process.env = saved;
  });

  it('imports, and its handler fails every invocation with the ConfigError', async () => {
    // First imported here, after the variables are gone (each test file has its own module registry).
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- imported with this environment
    const module = require(`../../functions/${name}`) as {
      handler: (event: unknown, context: ReturnType<typeof lambdaContext>) => Promise<unknown>;
    };
    await expect(module.handler({}, lambdaContext(`signet-${name}`))).toThrowWithCode(
      ConfigError,
      'CONFIG_INVALID',
    );
  });
});
