/**
 * The cosign payload parser reads bytes anyone can write into a registry. It never throws: it
 * returns a payload whose fields have the types the verifier relies on, or a problem naming the
 * field. Payloads Signet builds always parse back to what was built.
 */
import fc from 'fast-check';
import {
  buildPayload,
  COSIGN_SIGNATURE_TYPE,
  MAX_PAYLOAD_BYTES,
  parsePayload,
} from '../../lib/cosign/payload';
import { cosignPayload } from '../support/cosign-writer';
import { anyJson, check, hostileString, mutatedFixtures, RUNS } from './arbitraries';

const DIGEST = `sha256:${'ab'.repeat(32)}`;

const REAL = [
  JSON.parse(
    buildPayload({
      registry: '127.0.0.1:5000',
      repository: 'team-a/app',
      digest: DIGEST,
      tag: 'v1',
      annotations: { 'dev.signet/rule': 'team-a', 'dev.signet/witness': 'release' },
    }).toString('utf8'),
  ) as unknown,
  JSON.parse(cosignPayload('index.docker.io/library/nginx', DIGEST).toString('utf8')) as unknown,
];

type Parsed = ReturnType<typeof parsePayload>;

function expectSound(result: Parsed): 'ok' | 'problem' {
  if (result.ok) {
    const { critical, optional } = result.payload;
    check(typeof critical.identity['docker-reference'] === 'string', 'identity is not a string', result);
    check(typeof critical.image['docker-manifest-digest'] === 'string', 'digest is not a string', result);
    check(critical.type === COSIGN_SIGNATURE_TYPE, 'wrong type', result);
    check(
      optional === null || (typeof optional === 'object' && !Array.isArray(optional)),
      'optional is neither null nor an object',
      result,
    );
    return 'ok';
  }
  check(result.problem.field.length > 0, 'problem names no field', result);
  check(result.problem.message.length > 0, 'problem says nothing', result);
  return 'problem';
}

const parse = (bytes: Buffer): Parsed => {
  // Never throws: a throw here fails the property with the input that caused it.
  return parsePayload(bytes);
};

describe('parsePayload', () => {
  it('returns a payload or a problem for arbitrary bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 256 }), (bytes) => {
        expectSound(parse(Buffer.from(bytes)));
      }),
      { numRuns: RUNS },
    );
  });

  it('returns a payload or a problem for arbitrary JSON and text', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          anyJson.map((v) => JSON.stringify(v) ?? ''),
          hostileString,
        ),
        (text) => {
          expectSound(parse(Buffer.from(text, 'utf8')));
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('returns a payload or a problem for mutated real payloads, reaching both', () => {
    const seen = { ok: 0, problem: 0 };
    fc.assert(
      fc.property(mutatedFixtures(REAL), (doc) => {
        seen[expectSound(parse(Buffer.from(JSON.stringify(doc) ?? '', 'utf8')))]++;
      }),
      { numRuns: RUNS },
    );
    expect(seen.ok).toBeGreaterThan(RUNS / 100);
    expect(seen.problem).toBeGreaterThan(RUNS / 100);
  });

  it('parses back every payload Signet builds', () => {
    const annotation = fc.dictionary(
      fc.string({ minLength: 1, maxLength: 20 }),
      fc.string({ maxLength: 40 }),
      { maxKeys: 4 },
    );
    fc.assert(
      fc.property(
        fc.constantFrom('127.0.0.1:5000', 'docker.io', 'registry.example.com'),
        fc.constantFrom('team-a/app', 'library/nginx', 'a/b/c'),
        fc.option(fc.constantFrom('v1', 'latest', 'tag_1.2'), { nil: undefined }),
        annotation,
        (registry, repository, tag, annotations) => {
          const result = parse(buildPayload({ registry, repository, digest: DIGEST, tag, annotations }));
          check(result.ok, 'a built payload does not parse', result);
          check(result.payload.critical.image['docker-manifest-digest'] === DIGEST, 'digest lost', result);
          if (tag !== undefined) check(result.payload.optional?.['tag'] === tag, 'tag lost', result);
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('refuses a payload over the size limit without parsing it', () => {
    const big = Buffer.alloc(MAX_PAYLOAD_BYTES + 1, 0x20);
    expect(parsePayload(big)).toEqual({
      ok: false,
      problem: { field: 'payload', message: expect.any(String) },
    });
  });
});
