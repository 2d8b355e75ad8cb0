import { ConfigError, RegistryError } from '../../lib/core/errors';
import { decodeAuthorizationToken, ecrError, parseEcrHost } from '../../lib/registry/ecr-auth';

const HOST = '123456789012.dkr.ecr.us-east-1.amazonaws.com';

describe('parseEcrHost', () => {
  it('reads account and region', () => {
    expect(parseEcrHost(HOST)).toEqual({ accountId: '123456789012', region: 'us-east-1' });
    expect(parseEcrHost('123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com')?.region).toBe(
      'us-gov-west-1',
    );
    expect(parseEcrHost('123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn')?.region).toBe('cn-north-1');
  });

  it('answers undefined for other hosts', () => {
    expect(parseEcrHost('ghcr.io')).toBeUndefined();
    expect(parseEcrHost('12345.dkr.ecr.us-east-1.amazonaws.com')).toBeUndefined();
    expect(parseEcrHost(`${HOST}:443`)).toBeUndefined();
  });
});

describe('decodeAuthorizationToken', () => {
  it('splits AWS:<password> at the first colon', () => {
    const token = Buffer.from('AWS:pass:with:colons').toString('base64');
    expect(decodeAuthorizationToken(token, HOST)).toEqual({ username: 'AWS', password: 'pass:with:colons' });
  });

  it('rejects a token without a password', () => {
    expect(() => decodeAuthorizationToken(Buffer.from('AWS').toString('base64'), HOST)).toThrowWithCode(
      RegistryError,
      'PROTOCOL',
    );
    expect(() => decodeAuthorizationToken(undefined, HOST)).toThrowWithCode(RegistryError, 'PROTOCOL');
  });
});

describe('ecrError', () => {
  const sdkError = (name: string, status?: number): Error =>
    Object.assign(new Error(name), { name, $metadata: { httpStatusCode: status } });

  it.each([
    ['ThrottlingException', 400, 'RATE_LIMITED'],
    ['UnrecognizedClientException', 400, 'UNAUTHORIZED'],
    ['ExpiredTokenException', 403, 'UNAUTHORIZED'],
    ['AccessDeniedException', 400, 'DENIED'],
    ['ServerException', 500, 'UNAVAILABLE'],
    ['InvalidParameterException', 400, 'PROTOCOL'],
  ])('converts %s (HTTP %d) into %s', (name, status, code) => {
    const converted = ecrError(sdkError(name, status), HOST);
    expect(converted).toBeInstanceOf(RegistryError);
    expect(converted.code).toBe(code);
    expect((converted as RegistryError).registry).toBe(HOST);
  });

  it('calls a failure without an HTTP answer UNREACHABLE', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    expect(ecrError(refused, HOST).code).toBe('UNREACHABLE');
  });

  it('calls missing credentials UNAUTHORIZED', () => {
    expect(ecrError(sdkError('CredentialsProviderError'), HOST).code).toBe('UNAUTHORIZED');
  });

  it('calls a missing region a configuration error', () => {
    expect(ecrError(new Error('Region is missing'), HOST)).toBeInstanceOf(ConfigError);
  });
});
