import {
  buildPayload,
  COSIGN_SIGNATURE_TYPE,
  dockerReference,
  MAX_PAYLOAD_BYTES,
  PAYLOAD_ANNOTATIONS,
  type PayloadSubject,
  parsePayload,
  sha256Digest,
} from '../../lib/cosign/payload';

const DIGEST = 'sha256:410a07f17151ffffb513f942a01748dfdb921de915ea6427d61d60b0357c1dcd';

/**
 * Payloads exactly as cosign writes them (Go's encoding/json over sigstore's `payload.Cosign`),
 * as printed by `cosign verify` in the cosign documentation.
 */
const COSIGN_PAYLOAD =
  '{"critical":{"identity":{"docker-reference":"gcr.io/dlorenc-vmtest2/demo"},"image":{"docker-manifest-digest":"sha256:410a07f17151ffffb513f942a01748dfdb921de915ea6427d61d60b0357c1dcd"},"type":"cosign container image signature"},"optional":null}';
/** `cosign sign -a env=prod -a team=a`: the annotations land in `optional`, keys sorted by Go. */
const COSIGN_PAYLOAD_WITH_ANNOTATIONS =
  '{"critical":{"identity":{"docker-reference":"ghcr.io/org/app"},"image":{"docker-manifest-digest":"sha256:410a07f17151ffffb513f942a01748dfdb921de915ea6427d61d60b0357c1dcd"},"type":"cosign container image signature"},"optional":{"env":"prod","team":"a"}}';

const subject = (overrides: Partial<PayloadSubject> = {}): PayloadSubject => ({
  registry: 'gcr.io',
  repository: 'dlorenc-vmtest2/demo',
  digest: DIGEST,
  tag: undefined,
  annotations: {},
  ...overrides,
});

const parsed = (bytes: Buffer): unknown => JSON.parse(bytes.toString('utf8'));

describe('buildPayload', () => {
  describe('in simple mode (no tag, no annotations)', () => {
    it('writes the bytes cosign writes', () => {
      expect(buildPayload(subject()).toString('utf8')).toBe(COSIGN_PAYLOAD);
    });

    it('names the repository only in docker-reference and sets optional to null', () => {
      expect(parsed(buildPayload(subject()))).toStrictEqual({
        critical: {
          identity: { 'docker-reference': 'gcr.io/dlorenc-vmtest2/demo' },
          image: { 'docker-manifest-digest': DIGEST },
          type: 'cosign container image signature',
        },
        optional: null,
      });
    });
  });

  describe('in default mode (with a tag)', () => {
    it('names repository:tag in docker-reference and repeats the tag in optional', () => {
      const bytes = buildPayload(subject({ registry: 'ghcr.io', repository: 'org/app', tag: 'v1' }));
      expect(bytes.toString('utf8')).toBe(
        '{"critical":{"identity":{"docker-reference":"ghcr.io/org/app:v1"},"image":{"docker-manifest-digest":"sha256:410a07f17151ffffb513f942a01748dfdb921de915ea6427d61d60b0357c1dcd"},"type":"cosign container image signature"},"optional":{"tag":"v1"}}',
      );
    });

    it('keeps the port of a registry host', () => {
      const payload = parsed(
        buildPayload(subject({ registry: 'localhost:5000', repository: 'app', tag: 'v1' })),
      );
      expect(payload).toMatchObject({
        critical: { identity: { 'docker-reference': 'localhost:5000/app:v1' } },
      });
    });

    it('repeats the identity tag in optional.tag even when an annotation is named "tag"', () => {
      const payload = parsed(
        buildPayload(
          subject({ registry: 'ghcr.io', repository: 'org/app', tag: 'v1', annotations: { tag: 'v2' } }),
        ),
      ) as { optional: Record<string, string> };
      expect(payload.optional[PAYLOAD_ANNOTATIONS.tag]).toBe('v1');
    });
  });

  describe('with Docker Hub', () => {
    it('uses the identity cosign writes: index.docker.io', () => {
      const payload = parsed(buildPayload(subject({ registry: 'docker.io', repository: 'library/ubuntu' })));
      expect(payload).toMatchObject({
        critical: { identity: { 'docker-reference': 'index.docker.io/library/ubuntu' } },
      });
    });

    it('uses index.docker.io with a tag too', () => {
      expect(dockerReference('docker.io', 'bitnami/nginx', '1.25')).toBe(
        'index.docker.io/bitnami/nginx:1.25',
      );
    });
  });

  describe('with annotations', () => {
    it('writes them into optional next to the tag', () => {
      const payload = parsed(
        buildPayload(
          subject({
            tag: 'v1',
            annotations: {
              [PAYLOAD_ANNOTATIONS.rule]: 'prod',
              [PAYLOAD_ANNOTATIONS.witness]: 'ci',
              env: 'prod',
            },
          }),
        ),
      );
      expect(payload).toMatchObject({
        optional: { tag: 'v1', 'dev.signet/rule': 'prod', 'dev.signet/witness': 'ci', env: 'prod' },
      });
    });

    it('writes annotation keys in sorted order', () => {
      const bytes = buildPayload(subject({ annotations: { zeta: '1', alpha: '2', 'dev.signet/rule': 'r' } }));
      const { optional } = parsed(bytes) as { optional: Record<string, string> };
      expect(Object.keys(optional)).toEqual(['alpha', 'dev.signet/rule', 'zeta']);
    });

    it('writes an empty annotation map as optional null', () => {
      expect(parsed(buildPayload(subject({ annotations: {} })))).toMatchObject({ optional: null });
    });
  });

  describe('determinism', () => {
    it('yields the same bytes, and so the same digest, for the same subject', () => {
      const a = buildPayload(subject({ tag: 'v1', annotations: { b: '2', a: '1' } }));
      const b = buildPayload(subject({ tag: 'v1', annotations: { a: '1', b: '2' } }));
      expect(a.equals(b)).toBe(true);
      expect(sha256Digest(a)).toBe(sha256Digest(b));
    });

    it('yields different bytes for a different digest or tag', () => {
      const base = buildPayload(subject({ tag: 'v1' }));
      expect(base.equals(buildPayload(subject({ tag: 'v2' })))).toBe(false);
      expect(base.equals(buildPayload(subject({ tag: 'v1', digest: `sha256:${'0'.repeat(64)}` })))).toBe(
        false,
      );
    });
  });

  it('round-trips through parsePayload', () => {
    const bytes = buildPayload(subject({ tag: 'v1', annotations: { env: 'prod' } }));
    const result = parsePayload(bytes);
    expect(result).toStrictEqual({ ok: true, payload: parsed(bytes) });
  });
});

describe('sha256Digest', () => {
  it('is the sha256 of the bytes', () => {
    expect(sha256Digest(Buffer.from(''))).toBe(
      'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    );
  });
});

describe('parsePayload', () => {
  describe('with payloads cosign writes', () => {
    it('accepts one with optional null', () => {
      expect(parsePayload(Buffer.from(COSIGN_PAYLOAD))).toStrictEqual({
        ok: true,
        payload: {
          critical: {
            identity: { 'docker-reference': 'gcr.io/dlorenc-vmtest2/demo' },
            image: { 'docker-manifest-digest': DIGEST },
            type: COSIGN_SIGNATURE_TYPE,
          },
          optional: null,
        },
      });
    });

    it('accepts one with annotations', () => {
      const result = parsePayload(Buffer.from(COSIGN_PAYLOAD_WITH_ANNOTATIONS));
      expect(result).toMatchObject({ ok: true, payload: { optional: { env: 'prod', team: 'a' } } });
    });

    it('accepts one without optional, reading it as null', () => {
      const bytes = Buffer.from(
        JSON.stringify({
          critical: {
            identity: { 'docker-reference': 'ghcr.io/org/app' },
            image: { 'docker-manifest-digest': DIGEST },
            type: COSIGN_SIGNATURE_TYPE,
          },
        }),
      );
      expect(parsePayload(bytes)).toMatchObject({ ok: true, payload: { optional: null } });
    });

    it('accepts pretty-printed JSON and ignores unknown fields', () => {
      const bytes = Buffer.from(
        JSON.stringify(
          {
            critical: {
              identity: { 'docker-reference': 'ghcr.io/org/app', extra: 1 },
              image: { 'docker-manifest-digest': DIGEST },
              type: COSIGN_SIGNATURE_TYPE,
            },
            optional: null,
            unknown: true,
          },
          null,
          2,
        ),
      );
      const result = parsePayload(bytes);
      expect(result).toMatchObject({
        ok: true,
        payload: { critical: { identity: { 'docker-reference': 'ghcr.io/org/app' } } },
      });
    });
  });

  describe('when the payload is malformed', () => {
    const valid = (): Record<string, unknown> => JSON.parse(COSIGN_PAYLOAD) as Record<string, unknown>;
    const critical = (changes: Record<string, unknown>) => ({
      ...valid(),
      critical: { ...(valid().critical as object), ...changes },
    });

    it.each<[string, string | Buffer, string]>([
      ['not JSON', '{"critical":', 'payload'],
      ['empty', '', 'payload'],
      ['not UTF-8 JSON', Buffer.from([0xff, 0xfe, 0x00]), 'payload'],
      ['a JSON array', JSON.stringify([valid()]), 'payload'],
      ['JSON null', 'null', 'payload'],
      ['a JSON string', JSON.stringify(COSIGN_PAYLOAD), 'payload'],
      ['larger than the limit', `${COSIGN_PAYLOAD}${' '.repeat(MAX_PAYLOAD_BYTES)}`, 'payload'],
      ['missing critical', JSON.stringify({ optional: null }), 'critical'],
      ['critical null', JSON.stringify({ critical: null, optional: null }), 'critical'],
      ['critical an array', JSON.stringify({ critical: [], optional: null }), 'critical'],
      ['missing critical.type', JSON.stringify(critical({ type: undefined })), 'critical.type'],
      [
        'another critical.type',
        JSON.stringify(critical({ type: 'atomic container signature' })),
        'critical.type',
      ],
      [
        'a critical.type of another case',
        JSON.stringify(critical({ type: 'Cosign container image signature' })),
        'critical.type',
      ],
      [
        'missing critical.image',
        JSON.stringify(critical({ image: undefined })),
        'critical.image.docker-manifest-digest',
      ],
      [
        'critical.image a string',
        JSON.stringify(critical({ image: DIGEST })),
        'critical.image.docker-manifest-digest',
      ],
      [
        'a numeric docker-manifest-digest',
        JSON.stringify(critical({ image: { 'docker-manifest-digest': 1 } })),
        'critical.image.docker-manifest-digest',
      ],
      [
        'missing docker-manifest-digest',
        JSON.stringify(critical({ image: {} })),
        'critical.image.docker-manifest-digest',
      ],
      [
        'missing critical.identity',
        JSON.stringify(critical({ identity: undefined })),
        'critical.identity.docker-reference',
      ],
      [
        'critical.identity an array',
        JSON.stringify(critical({ identity: [] })),
        'critical.identity.docker-reference',
      ],
      [
        'a null docker-reference',
        JSON.stringify(critical({ identity: { 'docker-reference': null } })),
        'critical.identity.docker-reference',
      ],
      ['optional a string', JSON.stringify({ ...valid(), optional: 'tag=v1' }), 'optional'],
      ['optional an array', JSON.stringify({ ...valid(), optional: [] }), 'optional'],
      ['optional a number', JSON.stringify({ ...valid(), optional: 0 }), 'optional'],
    ])('rejects a payload %s, naming %s', (_name, input, field) => {
      const result = parsePayload(Buffer.isBuffer(input) ? input : Buffer.from(input));
      expect(result.ok).toBe(false);
      if (!result.ok) {
        expect(result.problem.field).toBe(field);
        expect(result.problem.message.length).toBeGreaterThan(0);
      }
    });

    it('accepts a payload of exactly the limit', () => {
      const padded = `${COSIGN_PAYLOAD}${' '.repeat(MAX_PAYLOAD_BYTES - COSIGN_PAYLOAD.length)}`;
      expect(Buffer.byteLength(padded)).toBe(MAX_PAYLOAD_BYTES);
      expect(parsePayload(Buffer.from(padded)).ok).toBe(true);
    });
  });
});
