/**
 * A keyless cosign signature made by the public-good instance (a `.sig` layer: payload blob and
 * annotations, see test/fixtures/sigstore/SOURCES.md), verified offline, and tampered copies.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pem } from '@sigstore/core';
import { materialFromCosignLayer } from '../../lib/sigstore/cosign-layer';
import { keylessPolicy, type KeylessPolicyInput } from '../../lib/sigstore/identity';
import { verifyKeyless } from '../../lib/sigstore/keyless';
import { loadTrustedRoot } from '../../lib/sigstore/trusted-root';
import type { SignatureMaterial } from '../../lib/sigstore/types';

const FIXTURES = join(__dirname, '../fixtures/sigstore');
const read = (name: string): Buffer => readFileSync(join(FIXTURES, name));
const manifest = JSON.parse(read('cosign-keyless-sig-manifest.json').toString('utf8'));
const ANNOTATIONS: Readonly<Record<string, string>> = manifest.layers[0].annotations;
const PAYLOAD = read('cosign-keyless-payload.json');

const SUBJECT =
  'https://github.com/salrashid123/go-bazel-github-workflow/.github/workflows/release.yaml@refs/tags/v0.0.30';
const ISSUER = 'https://token.actions.githubusercontent.com';
const INTEGRATED_TIME = new Date(1772216446 * 1000);

const publicGood = loadTrustedRoot('public-good');
const policy = (overrides: Partial<KeylessPolicyInput> = {}) =>
  keylessPolicy({ issuer: ISSUER, subject: SUBJECT, ...overrides });

/** The layer's material, after `edit` changed its annotations. */
function layer(
  edit: (annotations: Record<string, string>) => void = () => {},
  payload = PAYLOAD,
): SignatureMaterial {
  const annotations = { ...ANNOTATIONS };
  edit(annotations);
  const material = materialFromCosignLayer(payload, annotations);
  if ('ok' in material) throw new Error(`fixture unreadable: ${material.detail}`);
  return material;
}

const flipByte = (bytes: Buffer, index: number): Buffer => {
  const copy = Buffer.from(bytes);
  const at = index < 0 ? copy.length + index : index;
  copy[at] = (copy[at] as number) ^ 0x01;
  return copy;
};

/** Edits cosign's Rekor bundle annotation (`{SignedEntryTimestamp, Payload}`). */
const editRekorBundle =
  (edit: (bundle: { SignedEntryTimestamp: string; Payload: Record<string, unknown> }) => void) =>
  (annotations: Record<string, string>): void => {
    const bundle = JSON.parse(annotations['dev.sigstore.cosign/bundle'] as string);
    edit(bundle);
    annotations['dev.sigstore.cosign/bundle'] = JSON.stringify(bundle);
  };

const codeOf = (material: SignatureMaterial, p = policy(), trust = publicGood): string => {
  const verdict = verifyKeyless(material, p, trust);
  return verdict.ok ? 'VALID' : verdict.code;
};

describe('a keyless cosign signature from the public-good instance', () => {
  it('verifies offline against the public-good root', () => {
    const verdict = verifyKeyless(layer(), policy(), publicGood);
    expect(verdict).toEqual({
      ok: true,
      identity: { issuer: ISSUER, subject: SUBJECT },
      key: expect.objectContaining({ asymmetricKeyType: 'ec' }),
      signedAt: INTEGRATED_TIME,
      timeSource: 'tlog',
      content: { $case: 'message', data: PAYLOAD },
    });
  });

  it('satisfies a subject pattern and the GitHub workflow claims', () => {
    const p = policy({
      subject: undefined,
      subjectRegExp: String.raw`https://github\.com/salrashid123/[^/]+/\.github/workflows/.+@refs/tags/v.+`,
      github: {
        repository: 'salrashid123/go-bazel-github-workflow',
        ref: 'refs/tags/v0.0.30',
        trigger: 'push',
      },
    });
    expect(codeOf(layer(), p)).toBe('VALID');
  });

  describe('when the identity is not the one required', () => {
    it.each<[string, Partial<KeylessPolicyInput>]>([
      ['another issuer', { issuer: 'https://accounts.google.com' }],
      ['another subject', { subject: SUBJECT.replace('v0.0.30', 'v0.0.31') }],
      [
        'a pattern that does not match',
        { subject: undefined, subjectRegExp: 'https://github\\.com/sigstore/.*' },
      ],
      [
        'a pattern that matches only a prefix',
        { subject: undefined, subjectRegExp: 'https://github\\.com/salrashid123/' },
      ],
      ['another repository', { github: { repository: 'salrashid123/other' } }],
      ['another ref', { github: { ref: 'refs/heads/main' } }],
      ['another trigger', { github: { trigger: 'workflow_dispatch' } }],
    ])('denies %s with IDENTITY_MISMATCH', (_case, overrides) => {
      expect(codeOf(layer(), policy(overrides))).toBe('IDENTITY_MISMATCH');
    });
  });

  describe('when the certificate is tampered with', () => {
    it('denies a changed certificate signature with CHAIN_UNTRUSTED', () => {
      const material = layer((a) => {
        const der = pem.toDER(a['dev.sigstore.cosign/certificate'] as string);
        a['dev.sigstore.cosign/certificate'] = pem.fromDER(flipByte(der, -1));
      });
      expect(codeOf(material)).toBe('CHAIN_UNTRUSTED');
    });

    it('denies a certificate that does not parse with MATERIAL_INVALID', () => {
      expect(codeOf(layer((a) => (a['dev.sigstore.cosign/certificate'] = 'not a certificate')))).toBe(
        'MATERIAL_INVALID',
      );
    });

    it('denies a signature without certificate with MATERIAL_INVALID', () => {
      expect(codeOf(layer((a) => delete a['dev.sigstore.cosign/certificate']))).toBe('MATERIAL_INVALID');
    });
  });

  describe('when the chain annotation is tampered with', () => {
    it('denies a chain from another CA with CHAIN_UNTRUSTED', () => {
      const foreign = ['intermediate.pem', 'root.pem']
        .map((n) => read(`private-ca/${n}`).toString('utf8'))
        .join('');
      expect(codeOf(layer((a) => (a['dev.sigstore.cosign/chain'] = foreign)))).toBe('CHAIN_UNTRUSTED');
    });

    it('denies a chain that does not parse with CHAIN_UNTRUSTED', () => {
      expect(
        codeOf(
          layer(
            (a) =>
              (a['dev.sigstore.cosign/chain'] =
                '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----'),
          ),
        ),
      ).toBe('CHAIN_UNTRUSTED');
    });

    it('accepts the signature without a chain annotation (the trusted root holds the chain)', () => {
      expect(codeOf(layer((a) => delete a['dev.sigstore.cosign/chain']))).toBe('VALID');
    });
  });

  describe('when the Rekor bundle is tampered with', () => {
    it.each<[string, (b: { SignedEntryTimestamp: string; Payload: Record<string, unknown> }) => void]>([
      [
        'a changed SET',
        (b) =>
          (b.SignedEntryTimestamp = flipByte(Buffer.from(b.SignedEntryTimestamp, 'base64'), 10).toString(
            'base64',
          )),
      ],
      [
        'a changed integrated time',
        (b) => (b.Payload['integratedTime'] = (b.Payload['integratedTime'] as number) - 60),
      ],
      ['a changed log index', (b) => (b.Payload['logIndex'] = (b.Payload['logIndex'] as number) + 1)],
      ['another log id', (b) => (b.Payload['logID'] = 'ab'.repeat(32))],
      ['a missing field', (b) => delete b.Payload['logID']],
    ])('denies %s with TLOG_INVALID', (_case, edit) => {
      expect(codeOf(layer(editRekorBundle(edit)))).toBe('TLOG_INVALID');
    });

    it('denies a bundle that is not JSON with TLOG_INVALID', () => {
      expect(codeOf(layer((a) => (a['dev.sigstore.cosign/bundle'] = '{')))).toBe('TLOG_INVALID');
    });

    it('denies a signature without Rekor bundle with TLOG_MISSING', () => {
      expect(codeOf(layer((a) => delete a['dev.sigstore.cosign/bundle']))).toBe('TLOG_MISSING');
    });
  });

  describe('when the signature or payload is tampered with', () => {
    it('denies a changed signature with SIGNATURE_INVALID', () => {
      const material = layer((a) => {
        const signature = Buffer.from(a['dev.cosignproject.cosign/signature'] as string, 'base64');
        a['dev.cosignproject.cosign/signature'] = flipByte(signature, -1).toString('base64');
      });
      expect(codeOf(material)).toBe('SIGNATURE_INVALID');
    });

    it('denies a changed payload with SIGNATURE_INVALID', () => {
      const payload = Buffer.from(PAYLOAD.toString('utf8').replace('server_image', 'evil_image'));
      expect(codeOf(layer(undefined, payload))).toBe('SIGNATURE_INVALID');
    });
  });

  describe('when an RFC 3161 timestamp is attached', () => {
    const withTimestamp = (der: Buffer) => (a: Record<string, string>) =>
      (a['dev.sigstore.cosign/rfc3161timestamp'] = JSON.stringify({
        SignedRFC3161Timestamp: der.toString('base64'),
      }));

    it('denies a timestamp that does not parse with TIMESTAMP_INVALID', () => {
      expect(codeOf(layer(withTimestamp(Buffer.from('not a timestamp'))))).toBe('TIMESTAMP_INVALID');
    });

    it('denies a real timestamp from an untrusted TSA, over another signature, with TIMESTAMP_INVALID', () => {
      expect(codeOf(layer(withTimestamp(read('private-ca/leaf.tsr'))))).toBe('TIMESTAMP_INVALID');
    });

    it('reports an annotation that is not cosign JSON as TIMESTAMP_INVALID', () => {
      const material = materialFromCosignLayer(PAYLOAD, {
        ...ANNOTATIONS,
        'dev.sigstore.cosign/rfc3161timestamp': 'MIIC',
      });
      expect(material).toMatchObject({ ok: false, code: 'TIMESTAMP_INVALID' });
    });
  });

  describe('when the witness names a private trusted root', () => {
    it('replaces the public-good root: the public-good log is no longer trusted (TLOG_INVALID)', () => {
      const privateRoot = loadTrustedRoot({ file: join(FIXTURES, 'conformance/trusted_root.private.json') });
      expect(codeOf(layer(), policy(), privateRoot)).toBe('TLOG_INVALID');
    });
  });

  it('reports a layer without signature as MATERIAL_INVALID', () => {
    const { ['dev.cosignproject.cosign/signature']: _signature, ...rest } = ANNOTATIONS;
    expect(materialFromCosignLayer(PAYLOAD, rest)).toMatchObject({ ok: false, code: 'MATERIAL_INVALID' });
  });
});
