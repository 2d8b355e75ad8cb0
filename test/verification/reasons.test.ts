import { ConfigError, InputError, KeyError, RegistryError } from '../../lib/core/errors';
import { isOperationalFailure, reason, reasonFromError } from '../../lib/verification/reasons';

describe('reasonFromError', () => {
  it.each([
    [
      new RegistryError('UNREACHABLE', 'r.example.com', 'r.example.com: connect ECONNREFUSED'),
      'REGISTRY_UNREACHABLE',
      true,
    ],
    [new RegistryError('UNAVAILABLE', 'r.example.com', 'HTTP 503'), 'REGISTRY_UNREACHABLE', true],
    [new RegistryError('RATE_LIMITED', 'r.example.com', 'HTTP 429'), 'REGISTRY_RATE_LIMITED', true],
    [new RegistryError('DENIED', 'r.example.com', 'HTTP 403'), 'REGISTRY_ERROR', true],
    [new RegistryError('PROTOCOL', 'r.example.com', 'not JSON'), 'REGISTRY_ERROR', false],
    [new RegistryError('DIGEST_MISMATCH', 'r.example.com', 'content has digest x'), 'REGISTRY_ERROR', false],
    [new KeyError('KMS_THROTTLED', 'alias/k', 'slow down'), 'KEY_UNAVAILABLE', true],
    [new KeyError('KMS_UNAVAILABLE', 'alias/k', 'connection reset'), 'KEY_UNAVAILABLE', true],
    [new KeyError('KMS_DISABLED', 'alias/k', 'disabled'), 'KEY_UNAVAILABLE', false],
    [new KeyError('KMS_ACCESS_DENIED', 'alias/k', 'AccessDeniedException'), 'KEY_UNAVAILABLE', false],
    [new ConfigError('KEY_UNREADABLE', 'no such file'), 'KEY_UNAVAILABLE', false],
    [new InputError('REFERENCE_INVALID', 'spec.containers[0].image', 'bad'), 'INVALID_REFERENCE', false],
    [new TypeError('boom'), 'INTERNAL_ERROR', false],
  ])('maps %s to %s', (error, code, operational) => {
    const r = reasonFromError(error, { witness: 'w' });
    expect(r.code).toBe(code);
    expect(isOperationalFailure(r)).toBe(operational);
    expect(r.message.length).toBeGreaterThan(0);
  });

  it('names the host once', () => {
    const r = reasonFromError(new RegistryError('UNREACHABLE', 'r.example.com', 'connect ECONNREFUSED'));
    expect(r.message).toBe('registry r.example.com is unreachable: connect ECONNREFUSED');
  });

  it('keeps the field of a bad reference', () => {
    const r = reasonFromError(
      new InputError('REFERENCE_INVALID', 'spec.containers[1].image', '"X" has an invalid tag'),
    );
    expect(r).toMatchObject({
      code: 'INVALID_REFERENCE',
      field: 'spec.containers[1].image',
      detail: '"X" has an invalid tag',
    });
  });
});

describe('reason messages', () => {
  it('say what failed', () => {
    expect(reason({ code: 'TAG_NOT_SIGNED', witness: 'w', tag: 'v2', signedTags: ['v1'] }).message).toBe(
      'witness "w" signed tag "v1", not "v2"',
    );
    expect(
      reason({
        code: 'INSUFFICIENT_WITNESSES',
        required: 2,
        valid: 1,
        witnesses: [
          { witness: 'a', code: 'VALID' },
          { witness: 'b', code: 'UNTRUSTED_SIGNER' },
        ],
      }).message,
    ).toBe('1 of the 2 required witnesses signed (a: VALID, b: UNTRUSTED_SIGNER)');
  });
});

describe('signer check reasons (certificate and keyless witnesses)', () => {
  it.each([
    'SIGNATURE_MALFORMED',
    'SIGNATURE_INVALID',
    'CERT_CHAIN_UNTRUSTED',
    'CERT_EXPIRED_AT_SIGNING',
    'SCT_INVALID',
    'SIGNER_IDENTITY_MISMATCH',
    'TLOG_MISSING',
    'TLOG_INVALID',
    'TIMESTAMP_MISSING',
    'TIMESTAMP_INVALID',
    'KEY_NOT_VALID_AT_SIGNING',
  ] as const)('%s names the witness, the signature and the detail, and is never waived', (code) => {
    const r = reason({ code, witness: 'ci', signature: 'sha256:abc', detail: 'what exactly' });
    expect(r.message).toMatch(/^witness "ci": .+ \(signature sha256:abc\): what exactly$/);
    expect(isOperationalFailure(r)).toBe(false);
  });

  it('says what a mismatched identity is', () => {
    expect(
      reason({
        code: 'SIGNER_IDENTITY_MISMATCH',
        witness: 'ci',
        signature: 'sha256:abc',
        detail: 'subject is "a", not "b"',
      }).message,
    ).toBe(
      'witness "ci": the signing certificate is for another identity (signature sha256:abc): subject is "a", not "b"',
    );
  });
});
