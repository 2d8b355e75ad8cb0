import { InputError } from '../../lib/core/errors';
import {
  formatReference,
  type ImageReference,
  isSignatureArtifactTag,
  parseReference,
  referrersFallbackTag,
  repositoryName,
  signatureTag,
} from '../../lib/core/reference';

const DIGEST = 'sha256:f98d67af8e53a536502bfc600de3266556b06ed635a32d60aa7a5fe6d7e609d7';
const HEX = DIGEST.slice('sha256:'.length);

/** The InputError `run` throws; fails the test when it returns or throws anything else. */
function inputErrorOf(run: () => unknown): InputError {
  try {
    run();
  } catch (err) {
    if (err instanceof InputError) return err;
    throw new Error(`expected an InputError, got ${String(err)}`, { cause: err });
  }
  throw new Error('expected an InputError, nothing was thrown');
}

describe('parseReference', () => {
  describe('with a Docker Hub name', () => {
    it.each<[string, ImageReference]>([
      ['ubuntu', { registry: 'docker.io', repository: 'library/ubuntu', tag: 'latest', digest: undefined }],
      [
        'ubuntu:22.04',
        { registry: 'docker.io', repository: 'library/ubuntu', tag: '22.04', digest: undefined },
      ],
      [
        'bitnami/nginx',
        { registry: 'docker.io', repository: 'bitnami/nginx', tag: 'latest', digest: undefined },
      ],
      [
        'docker.io/ubuntu',
        { registry: 'docker.io', repository: 'library/ubuntu', tag: 'latest', digest: undefined },
      ],
      [
        'docker.io/library/ubuntu:22.04',
        { registry: 'docker.io', repository: 'library/ubuntu', tag: '22.04', digest: undefined },
      ],
      [
        'index.docker.io/ubuntu',
        { registry: 'docker.io', repository: 'library/ubuntu', tag: 'latest', digest: undefined },
      ],
      [
        'index.docker.io/library/ubuntu',
        { registry: 'docker.io', repository: 'library/ubuntu', tag: 'latest', digest: undefined },
      ],
      [
        'registry-1.docker.io/bitnami/nginx:1.25',
        { registry: 'docker.io', repository: 'bitnami/nginx', tag: '1.25', digest: undefined },
      ],
      [
        `ubuntu@${DIGEST}`,
        { registry: 'docker.io', repository: 'library/ubuntu', tag: undefined, digest: DIGEST },
      ],
    ])('normalizes %j', (input, expected) => {
      expect(parseReference(input)).toStrictEqual(expected);
    });
  });

  describe('with a registry host', () => {
    it.each<[string, ImageReference]>([
      ['ghcr.io/org/app:v1', { registry: 'ghcr.io', repository: 'org/app', tag: 'v1', digest: undefined }],
      [
        'ghcr.io/org/team/app',
        { registry: 'ghcr.io', repository: 'org/team/app', tag: 'latest', digest: undefined },
      ],
      ['ghcr.io/app', { registry: 'ghcr.io', repository: 'app', tag: 'latest', digest: undefined }],
      ['localhost/app', { registry: 'localhost', repository: 'app', tag: 'latest', digest: undefined }],
      [
        'localhost:5000/team-a/app:v1',
        { registry: 'localhost:5000', repository: 'team-a/app', tag: 'v1', digest: undefined },
      ],
      [
        'registry:5000/app',
        { registry: 'registry:5000', repository: 'app', tag: 'latest', digest: undefined },
      ],
      [
        '127.0.0.1:5000/app:v1',
        { registry: '127.0.0.1:5000', repository: 'app', tag: 'v1', digest: undefined },
      ],
      [
        '123456789012.dkr.ecr.us-west-2.amazonaws.com/my-repository-name:latest',
        {
          registry: '123456789012.dkr.ecr.us-west-2.amazonaws.com',
          repository: 'my-repository-name',
          tag: 'latest',
          digest: undefined,
        },
      ],
    ])('parses %j', (input, expected) => {
      expect(parseReference(input)).toStrictEqual(expected);
    });

    it('never puts a non-Docker Hub repository under library/', () => {
      expect(parseReference('localhost:5000/app').repository).toBe('app');
    });
  });

  describe('with an IPv6 registry', () => {
    it.each<[string, ImageReference]>([
      [
        '[::1]:5000/team-a/app:v1',
        { registry: '[::1]:5000', repository: 'team-a/app', tag: 'v1', digest: undefined },
      ],
      ['[::1]/app', { registry: '[::1]', repository: 'app', tag: 'latest', digest: undefined }],
      [
        `[2001:db8::1]:443/app@${DIGEST}`,
        { registry: '[2001:db8::1]', repository: 'app', tag: undefined, digest: DIGEST },
      ],
    ])('keeps the brackets of %j', (input, expected) => {
      expect(parseReference(input)).toStrictEqual(expected);
    });
  });

  describe('with a tag and a digest', () => {
    it('keeps both', () => {
      expect(parseReference(`ghcr.io/org/app:v1@${DIGEST}`)).toStrictEqual({
        registry: 'ghcr.io',
        repository: 'org/app',
        tag: 'v1',
        digest: DIGEST,
      });
    });

    it('keeps both on a registry with a port', () => {
      expect(parseReference(`localhost:5000/app:v1@${DIGEST}`)).toStrictEqual({
        registry: 'localhost:5000',
        repository: 'app',
        tag: 'v1',
        digest: DIGEST,
      });
    });
  });

  describe('with a digest only', () => {
    it('does not default the tag', () => {
      expect(parseReference(`ghcr.io/org/app@${DIGEST}`).tag).toBeUndefined();
    });
  });

  describe('with neither tag nor digest', () => {
    it('defaults the tag to latest', () => {
      expect(parseReference('ghcr.io/org/app')).toMatchObject({ tag: 'latest', digest: undefined });
    });
  });

  describe('when the reference is invalid', () => {
    it.each([
      ['empty', ''],
      ['not a string', 42 as unknown as string],
      ['longer than 4096 characters', `ghcr.io/${'a'.repeat(4_096)}`],
      ['an uppercase repository', 'ghcr.io/Org/app'],
      ['an uppercase Docker Hub name', 'Ubuntu'],
      ['an empty tag', 'ghcr.io/org/app:'],
      ['a tag with an invalid character', 'ghcr.io/org/app:v1!'],
      ['a tag starting with a dot', 'ghcr.io/org/app:.v1'],
      ['a tag longer than 128 characters', `ghcr.io/org/app:${'a'.repeat(129)}`],
      ['an empty digest', 'ghcr.io/org/app@'],
      ['a short digest', 'ghcr.io/org/app@sha256:abc'],
      ['an uppercase digest', `ghcr.io/org/app@sha256:${HEX.toUpperCase()}`],
      ['a sha512 digest', `ghcr.io/org/app@sha512:${'a'.repeat(128)}`],
      ['a port that is not a number', 'ghcr.io:http/org/app'],
      ['a port with six digits', 'ghcr.io:123456/org/app'],
      ['a host label starting with "-"', '-ghcr.io/org/app'],
      ['an empty host label', 'ghcr..io/org/app'],
      ['a leading slash', '/org/app'],
      ['an empty path component', 'ghcr.io/org//app'],
      ['a trailing slash', 'ghcr.io/org/app/'],
      ['a repository ending with a separator', 'ghcr.io/org/app-'],
      ['whitespace', 'ghcr.io/org/app v1'],
      ['a registry host only', 'ghcr.io/'],
    ])('throws REFERENCE_INVALID for %s', (_name, input) => {
      expect(() => parseReference(input)).toThrowWithCode(InputError, 'REFERENCE_INVALID');
    });

    it('names the field "image" by default', () => {
      expect(inputErrorOf(() => parseReference('ghcr.io/Org/app')).field).toBe('image');
    });

    it('names the field it was given', () => {
      const field = 'request.object.spec.containers[0].image';
      expect(inputErrorOf(() => parseReference('', field)).field).toBe(field);
      expect(inputErrorOf(() => parseReference('ghcr.io/org/app@sha256:abc', field)).field).toBe(field);
      expect(inputErrorOf(() => parseReference('ghcr.io/org/app:', field)).field).toBe(field);
      expect(inputErrorOf(() => parseReference('-bad/org/app', field)).field).toBe(field);
      expect(inputErrorOf(() => parseReference('ghcr.io/Org/app', field)).field).toBe(field);
    });
  });
});

describe('formatReference and repositoryName', () => {
  it('formats registry/repository[:tag][@digest]', () => {
    const ref = parseReference(`ghcr.io/org/app:v1@${DIGEST}`);
    expect(repositoryName(ref)).toBe('ghcr.io/org/app');
    expect(formatReference(ref)).toBe(`ghcr.io/org/app:v1@${DIGEST}`);
    expect(formatReference(parseReference(`ghcr.io/org/app@${DIGEST}`))).toBe(`ghcr.io/org/app@${DIGEST}`);
    expect(formatReference(parseReference('ubuntu'))).toBe('docker.io/library/ubuntu:latest');
  });

  it('round-trips through parseReference', () => {
    for (const input of [
      'localhost:5000/team-a/app:v1',
      `[::1]:5000/app@${DIGEST}`,
      'docker.io/library/ubuntu:22.04',
    ]) {
      expect(formatReference(parseReference(formatReference(parseReference(input))))).toBe(
        formatReference(parseReference(input)),
      );
    }
  });
});

describe('signatureTag', () => {
  it('is sha256-<hex>.sig', () => {
    expect(signatureTag(DIGEST)).toBe(`sha256-${HEX}.sig`);
  });

  it('is recognised as a signature artifact tag', () => {
    expect(isSignatureArtifactTag(signatureTag(DIGEST))).toBe(true);
  });
});

describe('referrersFallbackTag', () => {
  it('is sha256-<hex>', () => {
    expect(referrersFallbackTag(DIGEST)).toBe(`sha256-${HEX}`);
  });
});

describe('isSignatureArtifactTag', () => {
  it.each([`sha256-${HEX}.sig`, `sha256-${HEX}.att`, `sha256-${HEX}.sbom`, `sha256-${HEX}`])(
    'is true for %s',
    (tag) => {
      expect(isSignatureArtifactTag(tag)).toBe(true);
    },
  );

  it.each([
    ['no tag', undefined],
    ['latest', 'latest'],
    ['a short hex', 'sha256-abc.sig'],
    ['an uppercase hex', `sha256-${HEX.toUpperCase()}.sig`],
    ['another suffix', `sha256-${HEX}.txt`],
    ['a prefix', `v1-sha256-${HEX}.sig`],
    ['a digest with a colon', `sha256:${HEX}.sig`],
    ['a sha512 tag', `sha512-${'a'.repeat(128)}.sig`],
  ])('is false for %s', (_name, tag) => {
    expect(isSignatureArtifactTag(tag)).toBe(false);
  });
});
