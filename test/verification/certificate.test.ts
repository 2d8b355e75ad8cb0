/**
 * Certificate witnesses through the whole verifier, configured in YAML as users write them: the
 * private CA of test/fixtures/sigstore/private-ca (root, intermediate, leaves valid or not, a TSA
 * whose RFC 3161 timestamps give the signing time), its signatures of payload.json stored as
 * cosign `.sig` layers (`cosign sign --certificate … --certificate-chain …` with a TSA) in the
 * in-memory registry. The chain is checked to the configured roots, at the signing time, instead
 * of the leaf's key being trusted blindly.
 */
import { RFC3161Timestamp } from '@sigstore/core';
import { parseConfig } from '../../lib/config/load';
import type { Witness } from '../../lib/config/types';
import { KeyRing } from '../../lib/keys/keyring';
import { ImageVerifier } from '../../lib/verification/verifier';
import { MemoryRegistries, MemoryRegistry, policy, testKey, verificationConfig } from './helpers';
import { CA, PRIVATE_CA, certificateLayer, flipByte, storeSignatures } from './sigstore-fixtures';

const IMAGE = `${CA.host}/${CA.repository}@${CA.digest}`;

let registries: MemoryRegistries;
let registry: MemoryRegistry;

beforeEach(() => {
  registries = new MemoryRegistries();
  registry = registries.add(CA.host);
});

/** The `vendor` witness as written in a config file next to the CA's files. */
function vendor(fields: string): Witness {
  const config = parseConfig(`witnesses:\n  - name: vendor\n${fields}`, { baseDir: PRIVATE_CA });
  return config.witnesses[0] as Witness;
}

const ROOTS = `    roots: [file://root.pem]
    certificateChain: file://intermediate.pem
    trustedRoot: file://trusted_root.json
`;

function verifier(witness: Witness, extra: readonly Witness[] = []): ImageVerifier {
  const witnesses = [witness, ...extra];
  return new ImageVerifier({
    config: verificationConfig(witnesses, [
      policy({
        name: 'vendor-images',
        images: [`${CA.host}/**`],
        attestors: [{ witnesses: [witness.name], count: 1 }],
      }),
    ]),
    registries,
    keys: new KeyRing({ witnesses, baseDir: PRIVATE_CA }),
    signatures: { bundles: false },
  });
}

const signedBy = (...layers: Parameters<typeof certificateLayer>[]): void =>
  storeSignatures(
    registry,
    CA.repository,
    CA.digest,
    layers.map((args) => certificateLayer(...args)),
  );

const tsaTime = (leaf: string): string =>
  RFC3161Timestamp.parse(Buffer.from(CA.bytes(`${leaf}.tsr`))).signingTime.toISOString();

describe('a certificate witness with roots', () => {
  it('admits a leaf that chains to the root, valid at the TSA time', async () => {
    signedBy(['leaf']);
    const decision = await verifier(vendor(ROOTS)).verify(IMAGE);
    expect(decision.allowed).toBe(true);
    expect(decision.policies[0]?.attestors[0]?.witnesses[0]?.signature).toMatchObject({
      source: 'cosign',
      algorithm: 'ECDSA_SHA_256',
      certificateSubject: 'release@signet.example',
      signedAt: tsaTime('leaf'),
      timeSource: 'tsa',
    });
  });

  it('admits an RSA leaf whose signature is RSA-PSS', async () => {
    signedBy(['leaf-rsa']);
    const decision = await verifier(vendor(ROOTS)).verify(IMAGE);
    expect(decision.policies[0]?.attestors[0]?.witnesses[0]?.signature?.algorithm).toBe('RSASSA_PSS_SHA_256');
  });

  it.each<[string, string, Parameters<typeof certificateLayer>]>([
    ['a leaf of another CA', 'CERT_CHAIN_UNTRUSTED', ['leaf-other']],
    ['a leaf not meant for code signing', 'CERT_CHAIN_UNTRUSTED', ['leaf-tls']],
    ['a leaf that had expired at the TSA time', 'CERT_EXPIRED_AT_SIGNING', ['leaf-expired']],
    ['a timestamp over another signature', 'TIMESTAMP_INVALID', ['leaf', { timestamp: 'leaf-expired.tsr' }]],
    [
      'a changed signature',
      'SIGNATURE_INVALID',
      ['leaf', { signature: flipByte(Buffer.from(CA.text('leaf.sig').trim(), 'base64'), -1) }],
    ],
  ])('denies %s with %s', async (_case, code, layer) => {
    signedBy(layer);
    expect((await verifier(vendor(ROOTS)).verify(IMAGE)).reason).toMatchObject({ code, witness: 'vendor' });
  });

  it('admits a signature without a timestamp at the verification time', async () => {
    signedBy(['leaf', { timestamp: null }]);
    const decision = await verifier(vendor(ROOTS)).verify(IMAGE);
    expect(decision.policies[0]?.attestors[0]?.witnesses[0]?.signature).toMatchObject({
      timeSource: 'verification-time',
    });
  });

  it('denies it with TIMESTAMP_MISSING when the witness requires a signed time', async () => {
    signedBy(['leaf', { timestamp: null }]);
    const decision = await verifier(vendor(`${ROOTS}    requireSignedTime: true\n`)).verify(IMAGE);
    expect(decision.reason?.code).toBe('TIMESTAMP_MISSING');
  });

  it('checks timestamps against the public-good root by default: a private TSA is TIMESTAMP_INVALID', async () => {
    signedBy(['leaf']);
    const decision = await verifier(
      vendor('    roots: [file://root.pem]\n    certificateChain: file://intermediate.pem\n'),
    ).verify(IMAGE);
    expect(decision.reason?.code).toBe('TIMESTAMP_INVALID');
  });

  it('ignores signatures made with plain keys (UNTRUSTED_SIGNER)', async () => {
    const other = testKey('other');
    await registry.sign(CA.repository, CA.digest, other.privateKey, { payload: CA.bytes('payload.json') });
    expect((await verifier(vendor(ROOTS)).verify(IMAGE)).reason?.code).toBe('UNTRUSTED_SIGNER');
  });

  it('needs the intermediate from the witness or the signature: CERT_CHAIN_UNTRUSTED without it', async () => {
    signedBy(['leaf']);
    const decision = await verifier(
      vendor('    roots: [file://root.pem]\n    trustedRoot: file://trusted_root.json\n'),
    ).verify(IMAGE);
    expect(decision.reason?.code).toBe('CERT_CHAIN_UNTRUSTED');
  });

  it('denies with KEY_UNAVAILABLE when a root file is not a certificate', async () => {
    signedBy(['leaf']);
    const decision = await verifier(vendor('    roots: [file://payload.json]\n')).verify(IMAGE);
    expect(decision.reason).toMatchObject({ code: 'KEY_UNAVAILABLE', keyCode: 'CONFIG_INVALID' });
  });
});

describe('a certificate witness that pins its certificate, without roots', () => {
  const PINNED = '    certificate: file://leaf.pem\n    trustedRoot: file://trusted_root.json\n';

  it('admits signatures by that certificate, attached or not', async () => {
    signedBy(['leaf']);
    expect((await verifier(vendor(PINNED)).verify(IMAGE)).allowed).toBe(true);
    signedBy(['leaf', { certificate: null }]);
    expect((await verifier(vendor(PINNED)).verify(IMAGE)).allowed).toBe(true);
  });

  it('denies a signature by another certificate with CERT_CHAIN_UNTRUSTED', async () => {
    signedBy(['leaf-other']);
    expect((await verifier(vendor(PINNED)).verify(IMAGE)).reason?.code).toBe('CERT_CHAIN_UNTRUSTED');
  });

  it('denies a pinned certificate expired at the signing time with CERT_EXPIRED_AT_SIGNING', async () => {
    signedBy(['leaf-expired']);
    const decision = await verifier(
      vendor('    certificate: file://leaf-expired.pem\n    trustedRoot: file://trusted_root.json\n'),
    ).verify(IMAGE);
    expect(decision.reason?.code).toBe('CERT_EXPIRED_AT_SIGNING');
  });

  it('counts as the same signer as a public-key witness of the same key (N of M)', async () => {
    signedBy(['leaf']);
    const { X509Certificate } = await import('node:crypto');
    const pem = new X509Certificate(CA.text('leaf.pem')).publicKey.export({ type: 'spki', format: 'pem' });
    const sameKey: Witness = {
      name: 'same-key',
      description: undefined,
      key: { $case: 'publicKeyPem', pem: pem.toString() },
    };
    const witness = vendor(PINNED);
    const both = new ImageVerifier({
      config: verificationConfig(
        [witness, sameKey],
        [
          policy({
            name: 'two',
            images: [`${CA.host}/**`],
            attestors: [{ witnesses: ['vendor', 'same-key'], count: 2 }],
          }),
        ],
      ),
      registries,
      keys: new KeyRing({ witnesses: [witness, sameKey], baseDir: PRIVATE_CA }),
      signatures: { bundles: false },
    });
    expect((await both.verify(IMAGE)).reason).toMatchObject({ code: 'INSUFFICIENT_WITNESSES', valid: 1 });
  });
});
