import { X509Certificate, generateKeyPairSync, sign } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { ConfigError } from '../../lib/core/errors';
import { keyIdOf, verifySignature } from '../../lib/keys/algorithms';
import { PublicWitnessKey } from '../../lib/keys/public-key';

// A self-signed P-256 certificate (openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256).
const CERTIFICATE = `-----BEGIN CERTIFICATE-----
MIIBkjCCATmgAwIBAgIULbdnxGd9Jt4toN5ZE7t9D1pwlsIwCgYIKoZIzj0EAwIw
HjEcMBoGA1UEAwwTc2lnbmV0LXRlc3Qtd2l0bmVzczAgFw0yNjExMjMxMDAzNTla
GA8yMTI2MTAzMDEwMDM1OVowHjEcMBoGA1UEAwwTc2lnbmV0LXRlc3Qtd2l0bmVz
czBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABK9hoFm6e0f7DzkfTOdXyu7+tQ06
3HwvMVlBmXok+kIXYezl/QXAjVtjrbjjBEZbF6CzJBzwsO2lMkAwn30en9ajUzBR
MB0GA1UdDgQWBBRTe6pfEWnBtc2FT2vjbtncSEOWIjAfBgNVHSMEGDAWgBRTe6pf
EWnBtc2FT2vjbtncSEOWIjAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0cA
MEQCIHwGGpwlLGA5hIGK3WbVmlCpIct7sQ+JoVG8yzKGLnpwAiBMZ0kj2hJvY4AX
0+DstCc/Kid+qfwIJof7FHwfv1XRFA==
-----END CERTIFICATE-----
`;

const ec = generateKeyPairSync('ec', { namedCurve: 'P-384' });
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const spki = ec.publicKey.export({ type: 'spki', format: 'pem' }).toString();

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'signet-public-key-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

async function fileKey(name: string, contents: string): Promise<PublicWitnessKey> {
  const file = path.join(dir, name);
  await writeFile(file, contents);
  return new PublicWitnessKey('partner', { $case: 'file', path: file });
}

describe('a verify-only witness', () => {
  it('reads an SPKI PEM file', async () => {
    const key = await fileKey('partner.pub', spki);
    expect(await key.keyId()).toBe(keyIdOf(ec.publicKey));
    expect(await key.shape()).toEqual({ $case: 'ec', curve: 'P-384' });
    const data = Buffer.from('payload');
    expect(
      verifySignature(await key.publicKey(), 'ECDSA_SHA_384', data, sign('sha384', data, ec.privateKey)),
    ).toBe(true);
  });

  it('reads inline PEM', async () => {
    const key = new PublicWitnessKey('partner', { $case: 'pem', pem: spki });
    expect(await key.keyId()).toBe(keyIdOf(ec.publicKey));
  });

  it('reads a PKCS#1 RSA public key', async () => {
    const key = await fileKey('rsa.pub', rsa.publicKey.export({ type: 'pkcs1', format: 'pem' }).toString());
    expect(await key.shape()).toEqual({ $case: 'rsa', bits: 2048 });
  });

  it('takes the public key of an X.509 certificate', async () => {
    const key = await fileKey('partner.crt', CERTIFICATE);
    const publicKey = await key.publicKey();
    // Self-signed: the certificate verifies with its own key.
    expect(new X509Certificate(CERTIFICATE).verify(publicKey)).toBe(true);
    expect(await key.shape()).toEqual({ $case: 'ec', curve: 'P-256' });
  });

  it('cannot sign: KEY_INVALID naming the witness', async () => {
    const key = new PublicWitnessKey('partner', { $case: 'pem', pem: spki });
    expect(key.canSign).toBe(false);
    await expect(key.signer('ECDSA_SHA_384')).toThrowWithCode(ConfigError, 'KEY_INVALID');
    await expect(key.signer('ECDSA_SHA_384')).rejects.toThrow(/witness "partner" is verify-only/);
  });
});

describe('when the public key is unusable', () => {
  it('throws KEY_UNREADABLE for a missing file', async () => {
    const key = new PublicWitnessKey('partner', { $case: 'file', path: path.join(dir, 'nope.pub') });
    await expect(key.publicKey()).toThrowWithCode(ConfigError, 'KEY_UNREADABLE');
  });

  it.each<[string, string]>([
    ['a private key', ec.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()],
    ['not PEM', 'ssh-ed25519 AAAA...'],
    ['a damaged key', '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n'],
    ['a damaged certificate', '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n'],
    [
      'an Ed25519 key',
      generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    ],
    ['something else', '-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n'],
  ])('throws KEY_INVALID for %s', async (_name, pem) => {
    const key = new PublicWitnessKey('partner', { $case: 'pem', pem });
    await expect(key.keyId()).toThrowWithCode(ConfigError, 'KEY_INVALID');
  });
});
