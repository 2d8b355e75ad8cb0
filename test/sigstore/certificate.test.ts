/**
 * Certificate witnesses: a generated CA (test/fixtures/sigstore/private-ca, made by its
 * generate.sh with a TSA for signing times), and the real keyless cosign signature checked with
 * the Fulcio root as a configured root.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { RFC3161Timestamp } from '@sigstore/core';
import { ConfigError } from '../../lib/core/errors';
import {
  certificateTrust,
  verifyCertificateChain,
  type CertificateWitnessInput,
} from '../../lib/sigstore/certificate';
import { materialFromCosignLayer } from '../../lib/sigstore/cosign-layer';
import { loadTrustedRoot } from '../../lib/sigstore/trusted-root';
import type { SignatureMaterial } from '../../lib/sigstore/types';

const FIXTURES = join(__dirname, '../fixtures/sigstore');
const CA = join(FIXTURES, 'private-ca');
const text = (name: string): string => readFileSync(join(CA, name), 'utf8');
const bytes = (name: string): Buffer => readFileSync(join(CA, name));
const PAYLOAD = bytes('payload.json');

const tsaRoot = loadTrustedRoot({ file: join(CA, 'trusted_root.json') });
const signedAt = (leaf: string): Date =>
  RFC3161Timestamp.parse(Buffer.from(bytes(`${leaf}.tsr`))).signingTime;

/** A cosign layer signed by `leaf`, with its certificate and (unless told otherwise) its timestamp. */
function signedBy(
  leaf: string,
  options: {
    chain?: string;
    timestamp?: string | null;
    signature?: Buffer;
    certificate?: string | null;
  } = {},
): SignatureMaterial {
  const timestamp = options.timestamp === undefined ? `${leaf}.tsr` : options.timestamp;
  return {
    $case: 'cosign-layer',
    payload: PAYLOAD,
    signature: options.signature ?? Buffer.from(text(`${leaf}.sig`), 'base64'),
    certificatePem: options.certificate === null ? undefined : (options.certificate ?? text(`${leaf}.pem`)),
    chainPem: options.chain,
    rekorBundle: undefined,
    rfc3161Timestamp: timestamp === null ? undefined : bytes(timestamp),
  };
}

const witness = (input: Partial<CertificateWitnessInput> = {}) =>
  certificateTrust({
    roots: text('root.pem'),
    certificateChain: text('intermediate.pem'),
    evidence: tsaRoot,
    ...input,
  });

const codeOf = (material: SignatureMaterial, trust = witness(), now?: Date): string => {
  const verdict = verifyCertificateChain(material, trust, now);
  return verdict.ok ? 'VALID' : verdict.code;
};

describe('verifyCertificateChain with a generated CA', () => {
  describe('when the leaf chains to the configured root and was valid at the signed time', () => {
    it('accepts, signed at the TSA time', () => {
      const verdict = verifyCertificateChain(signedBy('leaf'), witness());
      expect(verdict).toMatchObject({
        ok: true,
        subject: 'release@signet.example',
        signedAt: signedAt('leaf'),
        timeSource: 'tsa',
        content: { $case: 'message', data: PAYLOAD },
      });
    });

    it('accepts an intermediate the signature presents (cosign chain annotation)', () => {
      const trust = witness({ certificateChain: undefined });
      expect(codeOf(signedBy('leaf', { chain: text('intermediate.pem') + text('root.pem') }), trust)).toBe(
        'VALID',
      );
    });

    it('accepts an RSA leaf whose signature is RSA-PSS', () => {
      expect(codeOf(signedBy('leaf-rsa'))).toBe('VALID');
    });

    it('accepts a cosign-style chain file (intermediates then root) as the only trust', () => {
      const trust = certificateTrust({ certificateChain: text('intermediate.pem') + text('root.pem') });
      expect(codeOf(signedBy('leaf', { timestamp: null }), trust)).toBe('VALID');
    });
  });

  describe('when the leaf does not chain to the configured root', () => {
    it('denies a leaf of another CA with CHAIN_UNTRUSTED', () => {
      expect(codeOf(signedBy('leaf-other'))).toBe('CHAIN_UNTRUSTED');
    });

    it('denies when only another root is configured with CHAIN_UNTRUSTED', () => {
      expect(
        codeOf(signedBy('leaf'), witness({ roots: text('other-root.pem'), certificateChain: undefined })),
      ).toBe('CHAIN_UNTRUSTED');
    });

    it('denies when no one supplies the intermediate with CHAIN_UNTRUSTED', () => {
      expect(codeOf(signedBy('leaf'), witness({ certificateChain: undefined }))).toBe('CHAIN_UNTRUSTED');
    });

    it('denies a leaf not meant for code signing with CHAIN_UNTRUSTED', () => {
      expect(codeOf(signedBy('leaf-tls'))).toBe('CHAIN_UNTRUSTED');
    });

    it('refuses a chain of hundreds of certificates with CHAIN_UNTRUSTED, before parsing them', () => {
      const junk = text('other-root.pem').repeat(200);
      expect(codeOf(signedBy('leaf', { chain: junk }), witness({ certificateChain: undefined }))).toBe(
        'CHAIN_UNTRUSTED',
      );
    });
  });

  describe('when the leaf had expired at signing time', () => {
    it('denies with CERT_EXPIRED_AT_SIGNING, the TSA time being after its validity', () => {
      expect(codeOf(signedBy('leaf-expired'))).toBe('CERT_EXPIRED_AT_SIGNING');
    });

    it('without a timestamp, judges it at the verification time', () => {
      const material = signedBy('leaf-expired', { timestamp: null });
      expect(codeOf(material, witness(), new Date('2021-06-01T00:00:00Z'))).toBe('VALID');
      expect(codeOf(material, witness(), new Date('2026-06-01T00:00:00Z'))).toBe('CERT_EXPIRED_AT_SIGNING');
      expect(verifyCertificateChain(material, witness(), new Date('2021-06-01T00:00:00Z'))).toMatchObject({
        timeSource: 'verification-time',
      });
    });
  });

  describe('when the signing time evidence is wrong or absent', () => {
    it('denies a timestamp over another signature with TIMESTAMP_INVALID', () => {
      expect(codeOf(signedBy('leaf', { timestamp: 'leaf-expired.tsr' }))).toBe('TIMESTAMP_INVALID');
    });

    it('denies a missing timestamp with TIMESTAMP_MISSING when the witness requires one', () => {
      const material = signedBy('leaf', { timestamp: null });
      expect(codeOf(material, witness({ requireSignedTime: true }))).toBe('TIMESTAMP_MISSING');
      expect(codeOf(material, witness({ requireSignedTime: true, evidence: undefined }))).toBe(
        'TIMESTAMP_MISSING',
      );
    });
  });

  describe('when the signature is tampered with', () => {
    it('denies with SIGNATURE_INVALID, with or without evidence', () => {
      const signature = Buffer.from(text('leaf.sig'), 'base64');
      signature[signature.length - 1] = (signature[signature.length - 1] as number) ^ 0x01;
      expect(codeOf(signedBy('leaf', { signature }))).toBe('SIGNATURE_INVALID');
      expect(codeOf(signedBy('leaf', { signature, timestamp: null }), witness({ evidence: undefined }))).toBe(
        'SIGNATURE_INVALID',
      );
    });
  });

  describe('when the witness pins its certificate', () => {
    const pinned = certificateTrust({ certificate: text('leaf.pem'), evidence: tsaRoot });

    it('accepts a signature by that certificate, with or without the certificate attached', () => {
      expect(codeOf(signedBy('leaf'), pinned)).toBe('VALID');
      expect(codeOf(signedBy('leaf', { certificate: null }), pinned)).toBe('VALID');
    });

    it('denies another certificate with CHAIN_UNTRUSTED', () => {
      expect(codeOf(signedBy('leaf-other'), pinned)).toBe('CHAIN_UNTRUSTED');
    });
  });
});

describe('verifyCertificateChain with the Fulcio root configured as a root', () => {
  const manifest = JSON.parse(readFileSync(join(FIXTURES, 'cosign-keyless-sig-manifest.json'), 'utf8'));
  const annotations: Record<string, string> = manifest.layers[0].annotations;
  const material = materialFromCosignLayer(
    readFileSync(join(FIXTURES, 'cosign-keyless-payload.json')),
    annotations,
  );
  const chain = annotations['dev.sigstore.cosign/chain'] as string;
  const fulcioRoot = chain.slice(chain.lastIndexOf('-----BEGIN CERTIFICATE-----'));
  if ('ok' in material) throw new Error('fixture unreadable');

  it('accepts the keyless signature, signed at its Rekor integrated time', () => {
    const trust = certificateTrust({ roots: fulcioRoot, evidence: loadTrustedRoot('public-good') });
    expect(verifyCertificateChain(material, trust)).toMatchObject({
      ok: true,
      signedAt: new Date(1772216446 * 1000),
      timeSource: 'tlog',
    });
  });

  it('without evidence, denies the ten-minute certificate with CERT_EXPIRED_AT_SIGNING', () => {
    const trust = certificateTrust({ roots: fulcioRoot });
    expect(codeOf(material, trust, new Date('2026-12-01T00:00:00Z'))).toBe('CERT_EXPIRED_AT_SIGNING');
  });
});

describe('certificateTrust', () => {
  it('needs roots, a chain ending in a root, or a certificate', () => {
    expect(() => certificateTrust({})).toThrowWithCode(ConfigError, 'CONFIG_INVALID');
  });

  it('names every field that is not PEM certificates', () => {
    try {
      certificateTrust({ roots: 'nope', certificateChain: 'nope either' }, 'witnesses[2]');
      throw new Error('nothing thrown');
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).issues.map((i) => i.path)).toEqual([
        'witnesses[2].roots',
        'witnesses[2].certificateChain',
      ]);
    }
  });
});
