import { ConfigError, KeyError } from '../../lib/core/errors';
import { KmsClients, kmsError } from '../../lib/keys/kms-key';

const KEY = 'alias/release';

const sdkError = (name: string, status?: number, attempts = 1): Error =>
  Object.assign(new Error(`${name} happened`), { name, $metadata: { httpStatusCode: status, attempts } });

describe('kmsError', () => {
  it.each([
    ['DisabledException', 400, 'KMS_DISABLED'],
    ['KMSInvalidStateException', 400, 'KMS_INVALID_STATE'],
    ['NotFoundException', 400, 'KMS_NOT_FOUND'],
    ['ThrottlingException', 400, 'KMS_THROTTLED'],
    ['AccessDeniedException', 400, 'KMS_ACCESS_DENIED'],
    ['UnrecognizedClientException', 400, 'KMS_ACCESS_DENIED'],
    ['KMSInternalException', 500, 'KMS_UNAVAILABLE'],
    ['DependencyTimeoutException', 503, 'KMS_UNAVAILABLE'],
    ['SomethingNew', 502, 'KMS_UNAVAILABLE'],
    ['InvalidKeyUsageException', 400, 'KMS_SIGN_FAILED'],
    ['ValidationException', 400, 'KMS_SIGN_FAILED'],
  ])('converts %s (HTTP %d) into %s, keeping the cause', (name, status, code) => {
    const cause = sdkError(name, status);
    const converted = kmsError(cause, KEY, 'Sign');
    expect(converted).toBeInstanceOf(KeyError);
    expect(converted.code).toBe(code);
    expect((converted as KeyError).keyId).toBe(KEY);
    expect(converted.cause).toBe(cause);
  });

  it('calls a failure without an HTTP answer KMS_UNAVAILABLE', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { code: 'ECONNREFUSED' });
    expect(kmsError(refused, KEY, 'Sign').code).toBe('KMS_UNAVAILABLE');
    expect(kmsError(sdkError('TimeoutError'), KEY, 'Sign').code).toBe('KMS_UNAVAILABLE');
  });

  it('says how many attempts the SDK made', () => {
    expect(kmsError(sdkError('ThrottlingException', 400, 5), KEY, 'Sign').message).toMatch(
      /after 5 attempts/,
    );
  });

  it('calls a missing region a configuration error', () => {
    expect(kmsError(new Error('Region is missing'), KEY, 'DescribeKey')).toBeInstanceOf(ConfigError);
  });

  it('passes Signet errors through', () => {
    const own = new KeyError('KMS_DISABLED', KEY, 'disabled');
    expect(kmsError(own, KEY, 'Sign')).toBe(own);
  });
});

describe('KmsClients', () => {
  it('shares one client per region and endpoint', () => {
    const clients = new KmsClients();
    try {
      const a = clients.get('eu-west-1', undefined);
      expect(clients.get('eu-west-1', undefined)).toBe(a);
      expect(clients.get('us-east-1', undefined)).not.toBe(a);
      expect(clients.get('eu-west-1', 'http://127.0.0.1:4566')).not.toBe(a);
    } finally {
      clients.destroy();
    }
  });

  it('makes 5 attempts in all by default', async () => {
    const clients = new KmsClients();
    const patient = new KmsClients({ maxAttempts: 2 });
    try {
      expect(await clients.get('eu-west-1', undefined).config.maxAttempts()).toBe(5);
      expect(await patient.get('eu-west-1', undefined).config.maxAttempts()).toBe(2);
    } finally {
      clients.destroy();
      patient.destroy();
    }
  });
});
