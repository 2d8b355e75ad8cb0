/**
 * Image references under arbitrary input (admission requests and the CLI pass user text straight
 * in): either a reference whose every part is valid and which formats and parses back to itself,
 * or an InputError REFERENCE_INVALID (4xx) naming the field it was given.
 */
import fc from 'fast-check';
import {
  formatReference,
  isDigest,
  isRegistryHost,
  isRepository,
  isTag,
  parseReference,
  type ImageReference,
} from '../../lib/core/reference';
import { check, expectInputRejection, hostileString, RUNS } from './arbitraries';

const DIGEST = `sha256:${'0123456789abcdef'.repeat(4)}`;

/** Pieces references are made of, and pieces that break them. */
const piece = fc.constantFrom(
  'a',
  'z',
  '0',
  '9',
  'A',
  '-',
  '_',
  '__',
  '.',
  '..',
  '/',
  '//',
  ':',
  '@',
  'sha256:',
  DIGEST,
  'localhost',
  'docker.io',
  'index.docker.io',
  'registry-1.docker.io',
  '127.0.0.1:5000',
  '[::1]:5000',
  '[',
  ']',
  'library',
  'latest',
  'v1.2.3',
  ' ',
  '\n',
  '%2F',
  'é',
  '😀',
);

const referenceLike = fc.array(piece, { maxLength: 12 }).map((parts) => parts.join(''));

const valid = fc.constantFrom(
  'nginx',
  'nginx:1.25',
  'library/nginx',
  'docker.io/library/nginx:latest',
  'index.docker.io/team/app:v1',
  `127.0.0.1:5000/team-a/app:v1@${DIGEST}`,
  `localhost/app@${DIGEST}`,
  '[::1]:5000/a/b/c:tag_1',
  'registry.example.com/team-a/app',
  '123456789012.dkr.ecr.us-east-1.amazonaws.com/team-a/app:v1',
);

/** A valid reference with one to three characters inserted, removed or replaced. */
const mutatedValid = fc
  .tuple(
    valid,
    fc.array(fc.tuple(fc.nat(), fc.constantFrom('insert', 'delete', 'replace'), piece), {
      minLength: 1,
      maxLength: 3,
    }),
  )
  .map(([text, edits]) =>
    edits.reduce<string>((out, [at, kind, with_]) => {
      const i = at % (out.length + 1);
      switch (kind) {
        case 'insert':
          return out.slice(0, i) + with_ + out.slice(i);
        case 'delete':
          return out.slice(0, i) + out.slice(i + 1);
        case 'replace':
          return out.slice(0, i) + with_ + out.slice(i + 1);
      }
    }, text),
  );

const field = fc.constantFrom('image', 'spec.containers[0].image', 'IMAGE');

function expectValid(ref: ImageReference, input: string): void {
  check(isRegistryHost(ref.registry), 'registry is not a host', { input, ref });
  check(
    ref.registry !== 'index.docker.io' && ref.registry !== 'registry-1.docker.io',
    'Docker Hub alias kept',
    {
      input,
      ref,
    },
  );
  check(isRepository(ref.repository), 'repository is not a repository name', { input, ref });
  check(ref.tag === undefined || isTag(ref.tag), 'tag is not a tag', { input, ref });
  check(ref.digest === undefined || isDigest(ref.digest), 'digest is not a sha256 digest', { input, ref });
  check(ref.tag !== undefined || ref.digest !== undefined, 'neither tag nor digest', { input, ref });
  // The canonical form is stable: it parses back to the same reference.
  const again = parseReference(formatReference(ref));
  check(
    again.registry === ref.registry &&
      again.repository === ref.repository &&
      again.tag === ref.tag &&
      again.digest === ref.digest,
    'does not survive formatReference and parseReference',
    { input, ref, again },
  );
}

function checkParse(input: string, name: string): 'accepted' | 'rejected' {
  let ref: ImageReference;
  try {
    ref = parseReference(input, name);
  } catch (error) {
    expectInputRejection(error, ['REFERENCE_INVALID']);
    check((error as { field: string }).field === name, 'names another field', error);
    return 'rejected';
  }
  expectValid(ref, input);
  return 'accepted';
}

describe('parseReference', () => {
  it('accepts or rejects arbitrary strings', () => {
    fc.assert(
      fc.property(fc.oneof(hostileString, referenceLike), field, (input, name) => {
        checkParse(input, name);
      }),
      { numRuns: RUNS },
    );
  });

  it('accepts or rejects mutated valid references, reaching both outcomes', () => {
    const seen = { accepted: 0, rejected: 0 };
    fc.assert(
      fc.property(mutatedValid, field, (input, name) => {
        seen[checkParse(input, name)]++;
      }),
      { numRuns: RUNS },
    );
    expect(seen.accepted).toBeGreaterThan(RUNS / 100);
    expect(seen.rejected).toBeGreaterThan(RUNS / 100);
  });

  it('rejects whatever is not a string, as the field', () => {
    fc.assert(
      fc.property(fc.oneof(fc.constant(undefined), fc.constant(null), fc.integer(), fc.object()), (input) => {
        checkParse(input as unknown as string, 'image');
      }),
      { numRuns: RUNS },
    );
  });
});
