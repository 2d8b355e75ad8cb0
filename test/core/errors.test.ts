import {
  ConfigError,
  describeError,
  httpStatusOf,
  InputError,
  type InputErrorCode,
  isRetryable,
  KeyError,
  type KeyErrorCode,
  PublishError,
  RegistryError,
  type RegistryErrorCode,
  SignetError,
} from '../../lib/core/errors';

describe('httpStatusOf', () => {
  describe('for an InputError', () => {
    it.each<[InputErrorCode, number]>([
      ['EVENT_INVALID', 400],
      ['REFERENCE_INVALID', 400],
      ['ADMISSION_REVIEW_INVALID', 400],
      ['REQUEST_INVALID', 400],
      ['BODY_TOO_LARGE', 413],
      ['UNSUPPORTED_MEDIA_TYPE', 415],
    ])('answers %s with %i', (code, status) => {
      expect(httpStatusOf(new InputError(code, 'body', 'bad'))).toBe(status);
    });
  });

  describe('for a RegistryError', () => {
    it.each<[RegistryErrorCode, number]>([
      ['RATE_LIMITED', 503],
      ['UNAVAILABLE', 503],
      ['UNREACHABLE', 503],
      ['UNAUTHORIZED', 502],
      ['DENIED', 502],
      ['NOT_FOUND', 502],
      ['PROTOCOL', 502],
      ['DIGEST_MISMATCH', 502],
      ['NOT_ALLOWED', 502],
      ['TOO_LARGE', 502],
    ])('answers %s with %i', (code, status) => {
      expect(httpStatusOf(new RegistryError(code, 'ghcr.io', 'failed'))).toBe(status);
    });
  });

  describe('for a KeyError', () => {
    it.each<[KeyErrorCode, number]>([
      ['KMS_THROTTLED', 503],
      ['KMS_UNAVAILABLE', 503],
      ['KMS_SIGN_FAILED', 502],
      ['KMS_DISABLED', 502],
      ['KMS_INVALID_STATE', 502],
      ['KMS_NOT_FOUND', 502],
      ['KMS_ACCESS_DENIED', 502],
      ['KEY_UNAVAILABLE', 502],
      ['SIGN_FAILED', 502],
    ])('answers %s with %i', (code, status) => {
      expect(httpStatusOf(new KeyError(code, 'alias/signet', 'failed'))).toBe(status);
    });
  });

  it.each([
    ['a ConfigError', new ConfigError('CONFIG_INVALID', 'bad config')],
    ['a PublishError', new PublishError('CONFLICT_RETRIES_EXHAUSTED', 'gave up')],
    ['a plain Error', new Error('boom')],
    ['a TypeError', new TypeError('x is undefined')],
    ['a thrown string', 'boom'],
    ['undefined', undefined],
    ['null', null],
  ])('answers %s with 500', (_name, err) => {
    expect(httpStatusOf(err)).toBe(500);
  });
});

describe('retryable', () => {
  it.each<[RegistryErrorCode, boolean]>([
    ['RATE_LIMITED', true],
    ['UNAVAILABLE', true],
    ['UNREACHABLE', true],
    ['UNAUTHORIZED', false],
    ['DENIED', false],
    ['NOT_FOUND', false],
    ['PROTOCOL', false],
    ['DIGEST_MISMATCH', false],
    ['NOT_ALLOWED', false],
    ['TOO_LARGE', false],
  ])('RegistryError %s is %p', (code, retryable) => {
    const err = new RegistryError(code, 'ghcr.io', 'failed');
    expect(err.retryable).toBe(retryable);
    expect(isRetryable(err)).toBe(retryable);
  });

  it.each<[KeyErrorCode, boolean]>([
    ['KMS_THROTTLED', true],
    ['KMS_UNAVAILABLE', true],
    ['KMS_SIGN_FAILED', false],
    ['KMS_DISABLED', false],
    ['KMS_INVALID_STATE', false],
    ['KMS_NOT_FOUND', false],
    ['KMS_ACCESS_DENIED', false],
    ['KEY_UNAVAILABLE', false],
    ['SIGN_FAILED', false],
  ])('KeyError %s is %p', (code, retryable) => {
    const err = new KeyError(code, 'alias/signet', 'failed');
    expect(err.retryable).toBe(retryable);
    expect(isRetryable(err)).toBe(retryable);
  });

  it.each([
    ['an InputError', new InputError('EVENT_INVALID', 'detail', 'bad')],
    ['a ConfigError', new ConfigError('CONFIG_INVALID', 'bad')],
    ['a PublishError', new PublishError('CONFLICT_RETRIES_EXHAUSTED', 'gave up')],
    ['a plain Error', new Error('ECONNRESET')],
    ['an object that claims to be retryable', { retryable: true, code: 'RATE_LIMITED' }],
    ['undefined', undefined],
    ['null', null],
  ])('isRetryable is false for %s', (_name, err) => {
    expect(isRetryable(err)).toBe(false);
  });
});

describe('error classes', () => {
  describe('InputError', () => {
    it('carries its code and field, prefixes the message with the field, keeps the cause', () => {
      const cause = new SyntaxError('Unexpected token');
      const err = new InputError('EVENT_INVALID', 'detail.image-digest', 'must be a sha256 digest', {
        cause,
      });
      expect(err).toBeInstanceOf(InputError);
      expect(err).toBeInstanceOf(SignetError);
      expect(err).toBeInstanceOf(Error);
      expect(err.name).toBe('InputError');
      expect(err.code).toBe('EVENT_INVALID');
      expect(err.field).toBe('detail.image-digest');
      expect(err.message.startsWith('detail.image-digest')).toBe(true);
      expect(err.cause).toBe(cause);
    });

    it('works with toThrowWithCode', () => {
      expect(() => {
        throw new InputError('REFERENCE_INVALID', 'image', 'bad');
      }).toThrowWithCode(InputError, 'REFERENCE_INVALID');
      expect(() => {
        throw new InputError('REFERENCE_INVALID', 'image', 'bad');
      }).not.toThrowWithCode(InputError, 'EVENT_INVALID');
      expect(() => {
        throw new InputError('REFERENCE_INVALID', 'image', 'bad');
      }).not.toThrowWithCode(ConfigError, 'REFERENCE_INVALID');
    });
  });

  describe('RegistryError', () => {
    it('carries the registry, status and Retry-After', () => {
      const err = new RegistryError('RATE_LIMITED', 'ghcr.io', 'slow down', {
        status: 429,
        retryAfterMs: 2_000,
      });
      expect(err.name).toBe('RegistryError');
      expect(err.registry).toBe('ghcr.io');
      expect(err.status).toBe(429);
      expect(err.retryAfterMs).toBe(2_000);
      expect(err.message.startsWith('ghcr.io')).toBe(true);
    });

    it('leaves status and Retry-After undefined when not given', () => {
      const err = new RegistryError('UNREACHABLE', 'ghcr.io', 'ECONNREFUSED');
      expect(err.status).toBeUndefined();
      expect(err.retryAfterMs).toBeUndefined();
    });
  });

  describe('KeyError', () => {
    it('carries the key id', () => {
      const err = new KeyError('KMS_DISABLED', 'alias/signet', 'disabled');
      expect(err.name).toBe('KeyError');
      expect(err.keyId).toBe('alias/signet');
      expect(err.message.startsWith('alias/signet')).toBe(true);
    });
  });

  describe('ConfigError', () => {
    it('lists its issues', () => {
      const issues = [{ path: 'signingRules[2].algorithm', message: 'unknown algorithm' }];
      const err = new ConfigError('CONFIG_INVALID', 'invalid configuration', { issues });
      expect(err.name).toBe('ConfigError');
      expect(err.issues).toEqual(issues);
    });

    it('has no issues when none are given', () => {
      expect(new ConfigError('CONFIG_UNREADABLE', 'cannot read').issues).toEqual([]);
    });
  });

  describe('PublishError', () => {
    it('is a SignetError with its code', () => {
      const err = new PublishError('SIGNATURE_MANIFEST_INVALID', 'not a manifest');
      expect(err).toBeInstanceOf(SignetError);
      expect(err.name).toBe('PublishError');
      expect(err.code).toBe('SIGNATURE_MANIFEST_INVALID');
    });
  });
});

describe('describeError', () => {
  it('uses the message of an Error', () => {
    expect(describeError(new Error('boom'))).toBe('boom');
  });

  it('stringifies anything else', () => {
    expect(describeError('boom')).toBe('boom');
    expect(describeError(42)).toBe('42');
    expect(describeError(undefined)).toBe('undefined');
  });
});
