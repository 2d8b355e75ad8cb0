/**
 * `bundle: true` on the real registry (distribution 2.8: no referrers API, so the `sha256-<hex>`
 * fallback index is the way to the bundles). What Signet writes is read back with plain fetch and
 * checked with node:crypto, the way cosign v3 or any other Sigstore verifier would: the referrer
 * manifest, the bundle v0.3, the DSSE pre-authentication encoding, the in-toto statement.
 */
import { createHash } from 'node:crypto';
import { bundleFromJSON } from '@sigstore/bundle';
import { toSignedEntity, toTrustMaterial, Verifier } from '@sigstore/verify';
import { HttpRegistryClient } from '../../lib/registry/client';
import { BundlePublisher } from '../../lib/signing/bundle-publisher';
import type { SigningReport } from '../../lib/signing/pipeline';
import { pushImageOverHttp, verifiesWith, type TrustedKey } from '../support/oci-http';
import { startTestRegistry, type TestRegistry } from '../support/registry';
import {
  configYaml,
  deliver,
  inPool,
  LOCAL_WITNESSES,
  pushEvent,
  startHarness,
  type Delivery,
  type Harness,
} from '../reliability/harness';

jest.setTimeout(60_000);

const BUNDLE_TYPE = 'application/vnd.dev.sigstore.bundle.v0.3+json';
const IN_TOTO = 'application/vnd.in-toto+json';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';

let registry: TestRegistry;
let signet: Harness;

beforeAll(async () => {
  registry = await startTestRegistry();
  signet = await startHarness({
    yaml: () =>
      configYaml(
        registry.host,
        'bundled',
        LOCAL_WITNESSES.map((w) => ({ ...w, key: `file://keys/${w.witness}.pem`, bundle: true })),
        `
policies:
  - name: bundled
    enabled: true
    images: ["${registry.host}/bundled/**", "${registry.host}/bundle-only/**"]
    attestors:
      - witnesses: [release-ec]
`,
      ),
  });
});

afterAll(async () => {
  await signet?.stop();
  await registry?.stop();
});

interface FoundBundle {
  readonly referrer: string;
  readonly witnesses: string[];
  readonly problems: string[];
  /** The bundle JSON, for a second opinion. */
  readonly json: unknown;
}

/** Every bundle the fallback index lists for `digest`, checked independently. */
async function readBundles(
  repository: string,
  digest: string,
  keys: readonly TrustedKey[],
): Promise<FoundBundle[]> {
  const base = registry.url;
  const res = await fetch(`${base}/v2/${repository}/manifests/${digest.replace(':', '-')}`, {
    headers: { accept: OCI_INDEX },
  });
  if (res.status === 404) return [];
  expect(res.status).toBe(200);
  const index = (await res.json()) as {
    mediaType: string;
    manifests: { digest: string; artifactType?: string }[];
  };
  expect(index.mediaType).toBe(OCI_INDEX);
  const found: FoundBundle[] = [];
  for (const entry of index.manifests) {
    const problems: string[] = [];
    if (entry.artifactType !== BUNDLE_TYPE) problems.push(`index entry artifactType ${entry.artifactType}`);
    const manifest = (await (
      await fetch(`${base}/v2/${repository}/manifests/${entry.digest}`, { headers: { accept: OCI_MANIFEST } })
    ).json()) as {
      artifactType: string;
      config: { mediaType: string };
      layers: { mediaType: string; digest: string }[];
      subject: { digest: string };
    };
    if (manifest.artifactType !== BUNDLE_TYPE) problems.push('manifest artifactType');
    if (manifest.config.mediaType !== 'application/vnd.oci.empty.v1+json')
      problems.push('config is not empty');
    if (manifest.subject.digest !== digest) problems.push(`subject ${manifest.subject.digest}`);
    const layer = manifest.layers[0];
    const blob = Buffer.from(
      await (await fetch(`${base}/v2/${repository}/blobs/${layer?.digest}`)).arrayBuffer(),
    );
    if (`sha256:${createHash('sha256').update(blob).digest('hex')}` !== layer?.digest)
      problems.push('layer digest');
    const bundle = JSON.parse(blob.toString('utf8')) as {
      mediaType: string;
      dsseEnvelope: { payload: string; payloadType: string; signatures: { sig: string }[] };
    };
    if (bundle.mediaType !== BUNDLE_TYPE) problems.push(`bundle mediaType ${bundle.mediaType}`);
    if (bundle.dsseEnvelope.payloadType !== IN_TOTO) problems.push('payloadType');
    const payload = Buffer.from(bundle.dsseEnvelope.payload, 'base64');
    const statement = JSON.parse(payload.toString('utf8')) as {
      _type: string;
      predicateType: string;
      subject: { name: string; digest: { sha256: string } }[];
    };
    if (statement._type !== 'https://in-toto.io/Statement/v1') problems.push('statement type');
    if (statement.predicateType !== 'https://sigstore.dev/cosign/sign/v1') problems.push('predicateType');
    if (statement.subject[0]?.digest.sha256 !== digest.slice(7)) problems.push('statement subject');
    if (statement.subject[0]?.name !== `${registry.host}/${repository}`) problems.push('statement name');
    // DSSE v1 pre-authentication encoding, written out here.
    const pae = Buffer.concat([
      Buffer.from(`DSSEv1 ${IN_TOTO.length} ${IN_TOTO} ${payload.length} `),
      payload,
    ]);
    const signature = Buffer.from(bundle.dsseEnvelope.signatures[0]?.sig ?? '', 'base64');
    found.push({
      referrer: entry.digest,
      witnesses: keys.filter((key) => verifiesWith(key, pae, signature)).map((key) => key.witness),
      problems,
      json: bundle,
    });
  }
  return found;
}

/** The rule outcomes of the signing attempts of a delivery's accepted pushes, once the journal is drained. */
async function bundleOutcomes(delivery: Delivery): Promise<unknown[]> {
  await signet.settle();
  const reports: SigningReport[] = delivery.accepted.flatMap((a) =>
    signet.attemptsOf(a.id).map((x) => x.report),
  );
  return reports.flatMap((r) =>
    r.outcomes.map((o) => [o.rule, o.status, o.bundle, o.bundleRef !== undefined]),
  );
}

describe('a rule with bundle: true', () => {
  let digest: string;
  let first: Delivery;

  beforeAll(async () => {
    digest = await pushImageOverHttp(registry.url, 'bundled/app', 'v1', 'bundle-1');
    first = await deliver(signet.url, [pushEvent(registry.host, 'bundled/app', digest, 'v1')]);
  });

  it('writes the cosign signature and a Sigstore bundle per witness, and says where', async () => {
    expect(first.status).toBe(202);
    expect(await bundleOutcomes(first)).toEqual(
      LOCAL_WITNESSES.map((w) => [`rule-${w.witness}`, 'signed', 'written', true]),
    );
  });

  it('publishes bundles any Sigstore verifier can check with the witness key alone', async () => {
    const bundles = await readBundles('bundled/app', digest, signet.keys);
    expect(bundles.flatMap((b) => b.problems)).toEqual([]);
    expect(bundles.map((b) => b.witnesses).sort()).toEqual(LOCAL_WITNESSES.map((w) => [w.witness]).sort());
  });

  it('publishes bundles sigstore-js verifies with the witness key (no transparency log asked for)', async () => {
    const bundles = await readBundles('bundled/app', digest, signet.keys);
    // sigstore-js checks DSSE signatures with the key's default padding: PKCS#1 v1.5 and ECDSA.
    const checked = bundles.filter((b) => b.witnesses[0] !== 'release-pss');
    expect(checked).toHaveLength(2);
    const verifierFor = (key: TrustedKey) =>
      new Verifier(
        toTrustMaterial(
          {
            mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
            tlogs: [],
            certificateAuthorities: [],
            ctlogs: [],
            timestampAuthorities: [],
          },
          () => ({ publicKey: key.publicKey, validFor: () => true }),
        ),
        { tlogThreshold: 0, ctlogThreshold: 0, timestampThreshold: 0 },
      );
    for (const found of checked) {
      const entity = toSignedEntity(bundleFromJSON(found.json));
      const own = signet.keys.find((k) => k.witness === found.witnesses[0]) as TrustedKey;
      const other = signet.keys.find((k) => k !== own && k.witness !== 'release-pss') as TrustedKey;
      expect(() => verifierFor(own).verify(entity)).not.toThrow();
      expect(() => verifierFor(other).verify(entity)).toThrow();
    }
  });

  it('finds them on the next delivery and writes nothing', async () => {
    const again = await deliver(signet.url, [pushEvent(registry.host, 'bundled/app', digest, 'v1')]);
    expect(await bundleOutcomes(again)).toEqual(
      LOCAL_WITNESSES.map((w) => [`rule-${w.witness}`, 'already-signed', 'present', false]),
    );
    expect(await readBundles('bundled/app', digest, signet.keys)).toHaveLength(3);
  });
});

describe('when one push is delivered ten times at once', () => {
  it('leaves exactly one bundle per witness', async () => {
    const digest = await pushImageOverHttp(registry.url, 'bundled/busy', 'v1', 'bundle-busy');
    await inPool(
      Array.from({ length: 10 }, () => pushEvent(registry.host, 'bundled/busy', digest, 'v1')),
      10,
      async (event) => {
        expect((await deliver(signet.url, [event])).status).toBe(202);
      },
    );
    await signet.settle();
    const bundles = await readBundles('bundled/busy', digest, signet.keys);
    expect(bundles.flatMap((b) => b.problems)).toEqual([]);
    expect(bundles.map((b) => b.witnesses).sort()).toEqual(LOCAL_WITNESSES.map((w) => [w.witness]).sort());
  });
});

describe('an image signed only with a bundle', () => {
  it('is admitted by Signet on the bundle alone, and keeps what another writer indexed', async () => {
    const digest = await pushImageOverHttp(registry.url, 'bundle-only/app', 'v1', 'bundle-only');
    const client = new HttpRegistryClient({
      host: registry.host,
      insecure: true,
      auth: { $case: 'anonymous' },
    });
    const ec = signet.running.signet.keys.get('release-ec');
    const rsa = signet.running.signet.keys.get('release-rsa');
    const subject = { mediaType: OCI_MANIFEST, digest, size: 0 };
    const head = await client.headManifest('bundle-only/app', digest);
    const publisher = new BundlePublisher();
    // Two publishes: the second must keep the first one's index entry.
    await publisher.publish(client, 'bundle-only/app', { ...subject, size: head?.size ?? 0 }, [
      {
        id: 'rsa',
        publicKey: await rsa.publicKey(),
        algorithm: 'RSASSA_PKCS1_V1_5_SHA_256',
        signer: () => rsa.signer('RSASSA_PKCS1_V1_5_SHA_256'),
      },
    ]);
    await publisher.publish(client, 'bundle-only/app', { ...subject, size: head?.size ?? 0 }, [
      {
        id: 'ec',
        publicKey: await ec.publicKey(),
        algorithm: 'ECDSA_SHA_256',
        signer: () => ec.signer('ECDSA_SHA_256'),
      },
    ]);
    const bundles = await readBundles('bundle-only/app', digest, signet.keys);
    expect(bundles.map((b) => b.witnesses).sort()).toEqual([['release-ec'], ['release-rsa']]);

    const res = await fetch(`${signet.url}/verify`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ image: `${registry.host}/bundle-only/app:v1` }),
    });
    const decision = (await res.json()) as {
      allowed: boolean;
      policies: { attestors: { witnesses: { signature?: { source: string } }[] }[] }[];
    };
    expect(decision.allowed).toBe(true);
    expect(decision.policies[0]?.attestors[0]?.witnesses[0]?.signature?.source).toBe('bundle');
  });
});
