import { buildPayload, sha256Digest } from '../../lib/cosign/payload';
import {
  CERTIFICATE_ANNOTATION,
  isSignatureArtifact,
  isSignatureArtifactType,
  layerSignature,
  SIGNATURE_ANNOTATION,
  signatureConfigBlob,
  signatureLayerDescriptor,
  signatureManifest,
} from '../../lib/cosign/signature-manifest';
import type { Descriptor, ImageIndex, ImageManifest } from '../../lib/registry/types';

/** A cosign 2.x `.sig` manifest, as `crane manifest` prints it (bundle annotation left out). */
const COSIGN_SIG_MANIFEST: ImageManifest = {
  schemaVersion: 2,
  mediaType: 'application/vnd.oci.image.manifest.v1+json',
  config: {
    mediaType: 'application/vnd.oci.image.config.v1+json',
    size: 233,
    digest: 'sha256:a3b01184f5d756fc9601d3386b49fe1c3cd3eedea08b8a6e11137b2a7988ed5f',
  },
  layers: [
    {
      mediaType: 'application/vnd.dev.cosign.simplesigning.v1+json',
      size: 252,
      digest: 'sha256:88b8a2ac5b829f47bd25a5a4d9c2ccb0fccff7f53a17477b6d9b5680436aa80f',
      annotations: {
        'dev.cosignproject.cosign/signature':
          'MEQCIAQScnT03MVfmxjYyW5qAmvQ6TSoukPuw0HmSVlMBwYEAiAzGb76cvDb4CHJ+H6tD00bW1Sh1CK6opaRmI2ist4p2A==',
      },
    },
  ],
};

/** An older cosign `.sig` manifest in Docker media types, two signatures (cosign docs). */
const COSIGN_SIG_DOCKER_MANIFEST: ImageManifest = {
  schemaVersion: 2,
  mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
  config: {
    mediaType: 'application/vnd.docker.container.image.v1+json',
    size: 342,
    digest: 'sha256:f5de0db6e714055d48b4bb3a374e9630c4923fa704d9311da6a2740cf625aaba',
  },
  layers: [
    {
      mediaType: 'application/vnd.dev.cosign.simplesigning.v1+json',
      size: 210,
      digest: 'sha256:1119abab63e605dcc281019bad0424744178b6f61ba57378701fe7391994c999',
      annotations: {
        'dev.cosignproject.cosign/signature':
          'MEUCIG0ZmgqE3qTrHWp+HF9CrxsNH57Cck3cQI+zNNrUwSHfAiEAm+2eY/Z6ixQwjLbTraDN5ZB/P1Z5k/KwIoblry65r+s=',
      },
    },
    {
      mediaType: 'application/vnd.dev.cosign.simplesigning.v1+json',
      size: 219,
      digest: 'sha256:583246418c2afd5bfe29694793d07da37ffd552aadf8879b1d98047178b80398',
      annotations: {
        'dev.cosignproject.cosign/signature':
          'MEUCIF/+szLKKA2q2+c86AXeWR7UeD5yYpW7p0waHordxNjhAiEAm5e+Hm7Jhv9JpSwHpTc6aGLSkL6/Acm/z+b8mhfGXqY=',
      },
    },
  ],
};

/**
 * A cosign 2.x `.att` manifest: DSSE envelope layers, empty signature annotation (cosign docs; the
 * docs abbreviate the digests, completed here with made-up hex).
 */
const COSIGN_ATT_MANIFEST: ImageManifest = {
  schemaVersion: 2,
  mediaType: 'application/vnd.oci.image.manifest.v1+json',
  config: {
    mediaType: 'application/vnd.oci.image.config.v1+json',
    size: 342,
    digest: 'sha256:078640d3b4c1f43b3ec6c6bd7a5e5c1a0b3a1f7b1e5c0c36a1f4e7b2c8d9e0f1',
  },
  layers: [
    {
      mediaType: 'application/vnd.dsse.envelope.v1+json',
      size: 676,
      digest: 'sha256:d222f2b6b1e0c5a6f3d7e8a9b0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9',
      annotations: {
        'dev.cosignproject.cosign/signature': '',
        predicateType: 'https://cosign.sigstore.dev/attestation/v1',
      },
    },
  ],
};

const SUBJECT: Descriptor = {
  mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
  digest: 'sha256:9c24ac7eca13411bee8f335f96442c0b5ef8de65ff1f85da6f16fcb0c046bd78',
  size: 1575,
};

/** A Sigstore bundle v0.3 referrer, as cosign 3 and actions/attest-build-provenance push it. */
const BUNDLE_REFERRER: ImageManifest = {
  schemaVersion: 2,
  mediaType: 'application/vnd.oci.image.manifest.v1+json',
  artifactType: 'application/vnd.dev.sigstore.bundle.v0.3+json',
  config: {
    mediaType: 'application/vnd.oci.empty.v1+json',
    digest: 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a',
    size: 2,
  },
  layers: [
    {
      mediaType: 'application/vnd.dev.sigstore.bundle.v0.3+json',
      digest: 'sha256:42f04b717a13e740a8a5b80798a4bbf256bb2334aab7a110d3d4c8b10f9ed395',
      size: 10204,
    },
  ],
  subject: SUBJECT,
  annotations: {
    'org.opencontainers.image.created': '2025-04-07T14:08:20.999Z',
    'dev.sigstore.bundle.content': 'dsse-envelope',
    'dev.sigstore.bundle.predicateType': 'https://slsa.dev/provenance/v1',
  },
};

/** An ordinary OCI image (an alpine layer; the config digest is made up). */
const OCI_IMAGE: ImageManifest = {
  schemaVersion: 2,
  mediaType: 'application/vnd.oci.image.manifest.v1+json',
  config: {
    mediaType: 'application/vnd.oci.image.config.v1+json',
    size: 1470,
    digest: 'sha256:c1d5b1b2fa8a0b8e2e1d5f2d7a4b2c4e6f8a0b2c4d6e8f0a2b4c6d8e0f2a4b6c',
  },
  layers: [
    {
      mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
      size: 3408729,
      digest: 'sha256:4abcf20661432fb2d719aaf90656f55c287f8ca915dc1c92ec14ff61e67fbaf8',
    },
  ],
};

/** An ordinary Docker v2 schema 2 image. */
const DOCKER_IMAGE: ImageManifest = {
  schemaVersion: 2,
  mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
  config: {
    mediaType: 'application/vnd.docker.container.image.v1+json',
    size: 1469,
    digest: 'sha256:9c7a54a9a43cca047013b82af109fe963fde787f63f9e016fdc3384500c2823d',
  },
  layers: [
    {
      mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
      size: 2811478,
      digest: 'sha256:59bf1c3509f33515622619af21ed55bbe26d24913cedbca106468a5fb37a50c3',
    },
  ],
};

const OCI_INDEX: ImageIndex = {
  schemaVersion: 2,
  mediaType: 'application/vnd.oci.image.index.v1+json',
  manifests: [
    {
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      digest: 'sha256:f98d67af8e53a536502bfc600de3266556b06ed635a32d60aa7a5fe6d7e609d7',
      size: 1022,
      platform: { architecture: 'amd64', os: 'linux' },
    },
  ],
};

describe('isSignatureArtifact', () => {
  describe('is true for', () => {
    it.each<[string, ImageManifest | ImageIndex]>([
      ['a cosign .sig image (OCI media types)', COSIGN_SIG_MANIFEST],
      ['a cosign .sig image (Docker media types, several signatures)', COSIGN_SIG_DOCKER_MANIFEST],
      ['a cosign .att image', COSIGN_ATT_MANIFEST],
      ['a Sigstore bundle v0.3 referrer', BUNDLE_REFERRER],
      [
        'a Sigstore bundle referrer with the older media type',
        {
          ...BUNDLE_REFERRER,
          artifactType: 'application/vnd.dev.sigstore.bundle+json;version=0.2',
          layers: [
            {
              ...BUNDLE_REFERRER.layers[0]!,
              mediaType: 'application/vnd.dev.sigstore.bundle+json;version=0.2',
            },
          ],
        },
      ],
      [
        'an in-toto attestation referrer',
        { ...BUNDLE_REFERRER, artifactType: 'application/vnd.in-toto+json' },
      ],
      [
        'a DSSE attestation referrer',
        { ...BUNDLE_REFERRER, artifactType: 'application/vnd.dsse.envelope.v1+json' },
      ],
      [
        'a Notation signature referrer',
        { ...BUNDLE_REFERRER, artifactType: 'application/vnd.cncf.notary.signature' },
      ],
      [
        'a cosign referrer without artifactType (OCI 1.1 signature via the config media type)',
        {
          ...COSIGN_SIG_MANIFEST,
          config: {
            ...COSIGN_SIG_MANIFEST.config,
            mediaType: 'application/vnd.dev.cosign.artifact.sig.v1+json',
          },
          subject: SUBJECT,
        },
      ],
      [
        'an index whose artifactType is a bundle',
        { ...OCI_INDEX, artifactType: 'application/vnd.dev.sigstore.bundle.v0.3+json' },
      ],
    ])('%s', (_name, manifest) => {
      expect(isSignatureArtifact(manifest)).toBe(true);
    });
  });

  describe('is false for', () => {
    it.each<[string, ImageManifest | ImageIndex]>([
      ['an OCI image', OCI_IMAGE],
      ['a Docker image', DOCKER_IMAGE],
      ['an OCI index', OCI_INDEX],
      ['an image without layers', { ...OCI_IMAGE, layers: [] }],
      [
        'an image with one signature layer among ordinary layers',
        { ...OCI_IMAGE, layers: [...OCI_IMAGE.layers, COSIGN_SIG_MANIFEST.layers[0]!] },
      ],
      [
        'an image with an unrelated artifactType',
        { ...OCI_IMAGE, artifactType: 'application/vnd.example.thing' },
      ],
    ])('%s', (_name, manifest) => {
      expect(isSignatureArtifact(manifest)).toBe(false);
    });
  });
});

describe('isSignatureArtifactType', () => {
  it.each([
    'application/vnd.dev.cosign.simplesigning.v1+json',
    'application/vnd.dev.sigstore.bundle.v0.3+json',
    'application/vnd.dev.sigstore.bundle+json;version=0.2',
    'application/vnd.dsse.envelope.v1+json',
    'application/vnd.in-toto+json',
    'application/vnd.dev.cosign.artifact.sig.v1+json',
    'application/vnd.dev.cosign.artifact.sbom.v1+json',
    'application/vnd.cncf.notary.signature',
  ])('is true for %s', (type) => {
    expect(isSignatureArtifactType(type)).toBe(true);
  });

  it.each([
    undefined,
    '',
    'application/vnd.oci.image.manifest.v1+json',
    'application/vnd.oci.image.config.v1+json',
    'application/vnd.oci.empty.v1+json',
    'application/vnd.docker.container.image.v1+json',
    'application/vnd.oci.image.layer.v1.tar+gzip',
  ])('is false for %s', (type) => {
    expect(isSignatureArtifactType(type)).toBe(false);
  });
});

describe('signatureLayerDescriptor', () => {
  const payload = buildPayload({
    registry: 'ghcr.io',
    repository: 'org/app',
    digest: 'sha256:f98d67af8e53a536502bfc600de3266556b06ed635a32d60aa7a5fe6d7e609d7',
    tag: undefined,
    annotations: {},
  });
  const signature = Buffer.from('3045022100c0ffee', 'hex');

  it('describes the payload blob with the cosign media type and the base64 signature annotation', () => {
    expect(signatureLayerDescriptor({ payload, signature })).toStrictEqual({
      mediaType: 'application/vnd.dev.cosign.simplesigning.v1+json',
      size: payload.length,
      digest: sha256Digest(payload),
      annotations: { 'dev.cosignproject.cosign/signature': signature.toString('base64') },
    });
  });

  it('keeps extra annotations', () => {
    const layer = signatureLayerDescriptor({
      payload,
      signature,
      annotations: { [CERTIFICATE_ANNOTATION]: '-----BEGIN CERTIFICATE-----', 'dev.signet/rule': 'prod' },
    });
    expect(layer.annotations).toStrictEqual({
      [CERTIFICATE_ANNOTATION]: '-----BEGIN CERTIFICATE-----',
      'dev.signet/rule': 'prod',
      [SIGNATURE_ANNOTATION]: signature.toString('base64'),
    });
  });

  it('never lets an extra annotation replace the signature', () => {
    const layer = signatureLayerDescriptor({
      payload,
      signature,
      annotations: { [SIGNATURE_ANNOTATION]: 'forged' },
    });
    expect(layer.annotations?.[SIGNATURE_ANNOTATION]).toBe(signature.toString('base64'));
  });

  it('round-trips its signature through layerSignature', () => {
    expect(layerSignature(signatureLayerDescriptor({ payload, signature }))?.equals(signature)).toBe(true);
  });
});

describe('signatureConfigBlob', () => {
  const layers = COSIGN_SIG_DOCKER_MANIFEST.layers;

  it('lists the layer digests as rootfs diff_ids, in order', () => {
    const config = JSON.parse(signatureConfigBlob(layers).toString('utf8')) as {
      rootfs: { type: string; diff_ids: string[] };
    };
    expect(config.rootfs).toStrictEqual({ type: 'layers', diff_ids: layers.map((layer) => layer.digest) });
  });

  it('is the empty image config go-containerregistry writes, one history entry per layer', () => {
    expect(JSON.parse(signatureConfigBlob(layers).toString('utf8'))).toStrictEqual({
      architecture: '',
      created: '0001-01-01T00:00:00Z',
      history: [{ created: '0001-01-01T00:00:00Z' }, { created: '0001-01-01T00:00:00Z' }],
      os: '',
      rootfs: { type: 'layers', diff_ids: layers.map((layer) => layer.digest) },
      config: {},
    });
  });

  it('is deterministic', () => {
    expect(signatureConfigBlob(layers).equals(signatureConfigBlob(layers))).toBe(true);
  });

  it('lists no diff_ids for no layers', () => {
    const config = JSON.parse(signatureConfigBlob([]).toString('utf8')) as { rootfs: { diff_ids: string[] } };
    expect(config.rootfs.diff_ids).toEqual([]);
  });
});

describe('signatureManifest', () => {
  it('is an OCI manifest whose config descriptor matches the config blob', () => {
    const layers = COSIGN_SIG_MANIFEST.layers;
    const config = signatureConfigBlob(layers);
    expect(signatureManifest(layers, config)).toStrictEqual({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: {
        mediaType: 'application/vnd.oci.image.config.v1+json',
        size: config.length,
        digest: sha256Digest(config),
      },
      layers,
    });
  });

  it('is itself a signature artifact', () => {
    const layers = COSIGN_SIG_MANIFEST.layers;
    expect(isSignatureArtifact(signatureManifest(layers, signatureConfigBlob(layers)))).toBe(true);
  });
});

describe('layerSignature', () => {
  const withSignature = (value: string | undefined): Descriptor => ({
    ...COSIGN_SIG_MANIFEST.layers[0]!,
    annotations: value === undefined ? {} : { [SIGNATURE_ANNOTATION]: value },
  });

  it('decodes the signature cosign wrote', () => {
    const signature = layerSignature(COSIGN_SIG_MANIFEST.layers[0]!);
    expect(signature?.toString('base64')).toBe(
      'MEQCIAQScnT03MVfmxjYyW5qAmvQ6TSoukPuw0HmSVlMBwYEAiAzGb76cvDb4CHJ+H6tD00bW1Sh1CK6opaRmI2ist4p2A==',
    );
    // A DER ECDSA signature: SEQUENCE, then its length.
    expect(signature?.[0]).toBe(0x30);
  });

  it('is undefined without annotations', () => {
    const { annotations: _annotations, ...layer } = COSIGN_SIG_MANIFEST.layers[0]!;
    expect(layerSignature(layer)).toBeUndefined();
  });

  it('is undefined without the signature annotation', () => {
    expect(layerSignature(withSignature(undefined))).toBeUndefined();
  });

  it('is undefined for the empty annotation of a cosign attestation layer', () => {
    expect(layerSignature(COSIGN_ATT_MANIFEST.layers[0]!)).toBeUndefined();
  });

  it.each([
    ['characters outside base64', 'not base64!'],
    ['base64url characters', 'MEQCIAQScnT03MVf-xjYyW5q_mvQ'],
    ['whitespace', 'MEQCIAQS cnT03MVf'],
    ['a newline', 'MEQCIAQS\ncnT03MVf'],
    ['padding in the middle', 'ME==QCIA'],
    ['too much padding', 'MEQ==='],
    ['only padding', '===='],
    ['more than 16 KiB', 'A'.repeat(16_385)],
  ])('is undefined for %s', (_name, value) => {
    expect(layerSignature(withSignature(value))).toBeUndefined();
  });

  it('is undefined for a non-string annotation value', () => {
    expect(layerSignature(withSignature(42 as unknown as string))).toBeUndefined();
  });
});
