/**
 * Sigstore bundles signed keyless by real Sigstore instances (public-good, staging with Rekor v2,
 * a private instance), verified offline, and tampered copies. Sources: test/fixtures/sigstore/
 * SOURCES.md and conformance/SOURCES.md.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { keylessPolicy } from '../../lib/sigstore/identity';
import { verifyKeyless } from '../../lib/sigstore/keyless';
import { loadTrustedRoot } from '../../lib/sigstore/trusted-root';
import type { KeylessPolicy, SignatureMaterial, TrustedRoot } from '../../lib/sigstore/types';

const FIXTURES = join(__dirname, '../fixtures/sigstore');
const CONFORMANCE = join(FIXTURES, 'conformance');
/** The parts of a serialized bundle these tests read and edit. */
interface BundleJson {
  mediaType: string;
  messageSignature?: { signature: string };
  verificationMaterial: {
    certificate?: { rawBytes: string };
    x509CertificateChain?: { certificates: { rawBytes: string }[] };
    tlogEntries: LogEntryJson[];
  };
}
interface LogEntryJson {
  logIndex: string;
  logId: { keyId: string };
  integratedTime: string;
  canonicalizedBody: string;
  inclusionPromise?: { signedEntryTimestamp: string };
  inclusionProof?: { hashes: string[]; checkpoint: { envelope: string } };
}

const json = (path: string): BundleJson => JSON.parse(readFileSync(path, 'utf8'));
const conformance = (name: string) => json(join(CONFORMANCE, `${name}.sigstore.json`));
const must = <T>(value: T | undefined): T => {
  if (value === undefined) throw new Error('fixture lacks a field the test edits');
  return value;
};
const A_TXT = readFileSync(join(CONFORMANCE, 'a.txt'));

const publicGood = loadTrustedRoot('public-good');
const privateRoot = loadTrustedRoot({ file: join(CONFORMANCE, 'trusted_root.private.json') });
const stagingRoot = loadTrustedRoot({ file: join(CONFORMANCE, 'trusted_root.staging.json') });

const BEACON =
  'https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main';
const GITHUB_ACTIONS = 'https://token.actions.githubusercontent.com';
const beacon = keylessPolicy({ issuer: GITHUB_ACTIONS, subject: BEACON });

/** A message-signature bundle over a.txt (`artifact` unless given), or a DSSE bundle (`null`). */
const bundle = (doc: unknown, artifact: Buffer | null = A_TXT): SignatureMaterial => ({
  $case: 'sigstore-bundle',
  bundle: doc,
  artifact: artifact ?? undefined,
});

const codeOf = (material: SignatureMaterial, trust: TrustedRoot, policy: KeylessPolicy = beacon): string => {
  const verdict = verifyKeyless(material, policy, trust);
  return verdict.ok ? 'VALID' : verdict.code;
};

/** A deep copy of `doc` with `edit` applied to its first log entry. */
const editEntry = (doc: BundleJson, edit: (entry: LogEntryJson) => void): BundleJson => {
  const copy = structuredClone(doc);
  edit(must(copy.verificationMaterial.tlogEntries[0]));
  return copy;
};

/** The public-good Fulcio intermediate and root (base64 DER), from the cosign fixture's chain annotation. */
const fulcioChain = (): [string, string] => {
  const manifest = JSON.parse(readFileSync(join(FIXTURES, 'cosign-keyless-sig-manifest.json'), 'utf8'));
  const chain: string = manifest.layers[0].annotations['dev.sigstore.cosign/chain'];
  const [intermediate, root] = [...chain.matchAll(/-----BEGIN CERTIFICATE-----([^-]+)-----END/g)].map((m) =>
    (m[1] as string).replace(/\s+/g, ''),
  );
  return [must(intermediate), must(root)];
};

const flipBase64 = (value: string, index = 5): string => {
  const bytes = Buffer.from(value, 'base64');
  bytes[index] = (bytes[index] as number) ^ 0x01;
  return bytes.toString('base64');
};

describe('a v0.3 message-signature bundle from the public-good instance', () => {
  const doc = conformance('happy-path-v0.3');

  it('verifies offline against the public-good root', () => {
    expect(verifyKeyless(bundle(doc), beacon, publicGood)).toEqual({
      ok: true,
      identity: { issuer: GITHUB_ACTIONS, subject: BEACON },
      key: expect.objectContaining({ asymmetricKeyType: 'ec' }),
      signedAt: new Date(1710869186 * 1000),
      timeSource: 'tlog',
      content: { $case: 'message', data: A_TXT },
    });
  });

  it('reads the workflow claims Fulcio wrote', () => {
    const withClaims = keylessPolicy({
      issuer: GITHUB_ACTIONS,
      subjectRegExp: String.raw`https://github\.com/sigstore-conformance/.+@refs/heads/main`,
      github: {
        repository: 'sigstore-conformance/extremely-dangerous-public-oidc-beacon',
        ref: 'refs/heads/main',
        trigger: 'workflow_dispatch',
      },
    });
    expect(codeOf(bundle(doc), publicGood, withClaims)).toBe('VALID');
  });

  it('verifies as a cosign layer with the same parts (the legacy path builds the same bundle)', () => {
    const entry = must(doc.verificationMaterial.tlogEntries[0]);
    const certificate = must(doc.verificationMaterial.certificate).rawBytes;
    const material: SignatureMaterial = {
      $case: 'cosign-layer',
      payload: A_TXT,
      signature: Buffer.from(must(doc.messageSignature).signature, 'base64'),
      certificatePem: `-----BEGIN CERTIFICATE-----\n${certificate}\n-----END CERTIFICATE-----\n`,
      chainPem: undefined,
      rekorBundle: JSON.stringify({
        SignedEntryTimestamp: must(entry.inclusionPromise).signedEntryTimestamp,
        Payload: {
          body: entry.canonicalizedBody,
          integratedTime: Number(entry.integratedTime),
          logIndex: Number(entry.logIndex),
          logID: Buffer.from(entry.logId.keyId, 'base64').toString('hex'),
        },
      }),
      rfc3161Timestamp: undefined,
    };
    expect(codeOf(material, publicGood)).toBe('VALID');
  });

  describe('when the inclusion proof is tampered with', () => {
    it('denies a changed proof hash with TLOG_INVALID', () => {
      const tampered = editEntry(doc, (e) => {
        const proof = must(e.inclusionProof);
        proof.hashes[0] = flipBase64(must(proof.hashes[0]));
      });
      expect(codeOf(bundle(tampered), publicGood)).toBe('TLOG_INVALID');
    });

    it('denies a changed checkpoint with TLOG_INVALID', () => {
      const tampered = editEntry(doc, (e) => {
        // origin, tree size, root hash, blank line, signature: claim a larger tree
        const checkpoint = must(e.inclusionProof).checkpoint;
        const lines = checkpoint.envelope.split('\n');
        lines[1] = String(Number(lines[1]) + 1);
        checkpoint.envelope = lines.join('\n');
      });
      expect(codeOf(bundle(tampered), publicGood)).toBe('TLOG_INVALID');
    });
  });

  describe('when the inclusion promise is tampered with', () => {
    it('denies a changed SET with TLOG_INVALID', () => {
      const tampered = editEntry(doc, (e) => {
        const promise = must(e.inclusionPromise);
        promise.signedEntryTimestamp = flipBase64(promise.signedEntryTimestamp);
      });
      expect(codeOf(bundle(tampered), publicGood)).toBe('TLOG_INVALID');
    });

    it('denies a bundle without SET with TIMESTAMP_MISSING: the proof shows inclusion, not when', () => {
      const tampered = editEntry(doc, (e) => delete e.inclusionPromise);
      expect(codeOf(bundle(tampered), publicGood)).toBe('TIMESTAMP_MISSING');
    });

    it('accepts the SET alone in a v0.1 bundle', () => {
      const v01 = editEntry(doc, (e) => delete e.inclusionProof);
      v01.mediaType = 'application/vnd.dev.sigstore.bundle+json;version=0.1';
      const vm = v01.verificationMaterial;
      vm.x509CertificateChain = { certificates: [must(vm.certificate)] };
      delete vm.certificate;
      expect(codeOf(bundle(v01), publicGood)).toBe('VALID');
    });

    it('denies a v0.1 chain that carries the root with CHAIN_UNTRUSTED (bundles must not)', () => {
      const v01 = editEntry(doc, (e) => delete e.inclusionProof);
      v01.mediaType = 'application/vnd.dev.sigstore.bundle+json;version=0.1';
      const vm = v01.verificationMaterial;
      const [intermediate, root] = fulcioChain();
      vm.x509CertificateChain = { certificates: [must(vm.certificate), { rawBytes: intermediate }] };
      delete vm.certificate;
      expect(codeOf(bundle(v01), publicGood)).toBe('VALID');
      vm.x509CertificateChain.certificates.push({ rawBytes: root });
      expect(codeOf(bundle(v01), publicGood)).toBe('CHAIN_UNTRUSTED');
    });

    it('reports a v0.3 bundle without inclusion proof as MATERIAL_INVALID (v0.2 and later require one)', () => {
      const tampered = editEntry(doc, (e) => delete e.inclusionProof);
      expect(codeOf(bundle(tampered), publicGood)).toBe('MATERIAL_INVALID');
    });
  });

  it('denies a bundle without log entry with TLOG_MISSING', () => {
    const copy = structuredClone(doc);
    copy.verificationMaterial.tlogEntries = [];
    expect(codeOf(bundle(copy), publicGood)).toBe('TLOG_MISSING');
  });

  it('denies a changed certificate with CHAIN_UNTRUSTED', () => {
    const copy = structuredClone(doc);
    const certificate = must(copy.verificationMaterial.certificate);
    const der = Buffer.from(certificate.rawBytes, 'base64');
    der[der.length - 1] = (der[der.length - 1] as number) ^ 0x01;
    certificate.rawBytes = der.toString('base64');
    expect(codeOf(bundle(copy), publicGood)).toBe('CHAIN_UNTRUSTED');
  });

  it('denies another artifact with SIGNATURE_INVALID', () => {
    expect(codeOf(bundle(doc, Buffer.from('another artifact')), publicGood)).toBe('SIGNATURE_INVALID');
  });

  it('reports a missing artifact, or a bundle that is not one, as MATERIAL_INVALID', () => {
    expect(codeOf(bundle(doc, null), publicGood)).toBe('MATERIAL_INVALID');
    expect(codeOf(bundle({ mediaType: 'application/json' }), publicGood)).toBe('MATERIAL_INVALID');
  });

  it('denies another identity with IDENTITY_MISMATCH', () => {
    const other = keylessPolicy({ issuer: GITHUB_ACTIONS, subject: BEACON.replace('main', 'release') });
    expect(codeOf(bundle(doc), publicGood, other)).toBe('IDENTITY_MISMATCH');
  });
});

describe('DSSE bundles from the public-good instance (sigstore-js)', () => {
  const brian = keylessPolicy({ issuer: 'https://github.com/login/oauth', subject: 'brian@dehamer.com' });

  it.each(['public-good-bundleV03-dsse', 'public-good-bundleV02-dsse', 'public-good-bundleV03-intoto'])(
    'verifies %s and returns the in-toto payload',
    (name) => {
      const verdict = verifyKeyless(
        bundle(json(join(FIXTURES, `${name}.sigstore.json`)), null),
        brian,
        publicGood,
      );
      expect(verdict).toMatchObject({ ok: true, timeSource: 'tlog', content: { $case: 'dsse' } });
      if (verdict.ok && verdict.content.$case === 'dsse') {
        expect(verdict.content.payloadType).toBe('application/vnd.in-toto+json');
        const statement: unknown = JSON.parse(
          readFileSync(join(FIXTURES, 'public-good-statement.json'), 'utf8'),
        );
        expect(JSON.parse(verdict.content.payload.toString('utf8'))).toEqual(statement);
      }
    },
  );
});

describe('a bundle from a private Sigstore instance', () => {
  const doc = conformance('intoto-with-custom-trust-root');

  it('verifies against its trusted_root.json', () => {
    expect(codeOf(bundle(doc, null), privateRoot)).toBe('VALID');
  });

  it('is not trusted by the public-good root (TIMESTAMP_INVALID: its TSA is unknown there)', () => {
    expect(codeOf(bundle(doc, null), publicGood)).toBe('TIMESTAMP_INVALID');
  });

  describe('when the certificate had expired at signing time', () => {
    it('denies a log time outside the certificate with CERT_EXPIRED_AT_SIGNING', () => {
      const expired = conformance('intoto-set-outside-signing-cert-validity_fail');
      expect(codeOf(bundle(expired, null), privateRoot)).toBe('CERT_EXPIRED_AT_SIGNING');
    });

    it('denies a TSA time outside the certificate with CERT_EXPIRED_AT_SIGNING', () => {
      const expired = conformance('intoto-tsa-timestamp-outside-cert-validity_fail');
      expect(codeOf(bundle(expired, null), privateRoot)).toBe('CERT_EXPIRED_AT_SIGNING');
    });
  });
});

describe('a Rekor v2 bundle from the staging instance (inclusion proof and TSA timestamp)', () => {
  it('verifies against the staging root, signed at the TSA time', () => {
    const verdict = verifyKeyless(bundle(conformance('rekor2-happy-path')), beacon, stagingRoot);
    expect(verdict).toMatchObject({ ok: true, timeSource: 'tsa' });
  });

  it('denies a timestamp over another signature with TIMESTAMP_INVALID', () => {
    expect(codeOf(bundle(conformance('rekor2-timestamp-payload-mismatch_fail')), stagingRoot)).toBe(
      'TIMESTAMP_INVALID',
    );
  });

  it('denies a bundle without timestamp with TIMESTAMP_MISSING', () => {
    expect(codeOf(bundle(conformance('rekor2-no-timestamp_fail')), stagingRoot)).toBe('TIMESTAMP_MISSING');
  });

  it('denies a timestamp after the certificate expired with CERT_EXPIRED_AT_SIGNING', () => {
    expect(codeOf(bundle(conformance('rekor2-timestamp-with-incorrect-time_fail')), stagingRoot)).toBe(
      'CERT_EXPIRED_AT_SIGNING',
    );
  });

  it('denies a changed inclusion proof with TLOG_INVALID', () => {
    const tampered = editEntry(conformance('rekor2-happy-path'), (e) => {
      const proof = must(e.inclusionProof);
      proof.hashes[0] = flipBase64(must(proof.hashes[0]));
    });
    expect(codeOf(bundle(tampered), stagingRoot)).toBe('TLOG_INVALID');
  });
});

describe('when the certificate carries an SCT from a CT log the root does not trust', () => {
  it('denies with SCT_INVALID', () => {
    const root = loadTrustedRoot({ file: join(CONFORMANCE, 'trusted_root.invalid-ct-key.json') });
    expect(codeOf(bundle(conformance('invalid-ct-key_fail')), root)).toBe('SCT_INVALID');
  });
});

describe('a bundle from the staging instance checked against the public-good root', () => {
  it('is denied: its log is not the public-good log (TLOG_INVALID)', () => {
    expect(codeOf(bundle(conformance('bundle-from-wrong-instance_fail')), publicGood)).toBe('TLOG_INVALID');
  });
});
