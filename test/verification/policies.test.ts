import fc from 'fast-check';
import { compileGlob } from '../../lib/core/glob';
import { parseReference } from '../../lib/core/reference';
import { PolicySet, hostPartOf, policyHash, prefilteredGlob } from '../../lib/verification/policies';
import { policy, testKey } from './helpers';

const release = testKey('release').witness;
const attestors = [{ witnesses: ['release'], count: 1 }];

describe('PolicySet', () => {
  const set = new PolicySet(
    [
      policy({
        name: 'prod',
        images: ['registry.example.com/team-a/**'],
        namespaces: ['prod', 'prod-*'],
        clusters: ['eu-*'],
        attestors,
      }),
      policy({ name: 'any', images: ['registry.example.com/*/base'], attestors }),
      policy({ name: 'hub', images: ['docker.io/library/*'], attestors }),
      policy({ name: 'ecr', images: ['*.dkr.ecr.*.amazonaws.com/**'], attestors }),
      policy({ name: 'off', enabled: false, images: ['disabled.example.com/**'], attestors }),
    ],
    [release],
  );
  const names = (cluster: string, namespace: string, image: string) =>
    set.select({ cluster, namespace }, parseReference(image)).map((p) => p.policy.name);

  describe('select', () => {
    it('matches cluster, Kubernetes namespace and image globs together', () => {
      expect(names('eu-1', 'prod', 'registry.example.com/team-a/app:v1')).toEqual(['prod']);
      expect(
        names('eu-1', 'prod-payments', 'registry.example.com/team-a/x/y/z@sha256:' + 'a'.repeat(64)),
      ).toEqual(['prod']);
      expect(names('us-1', 'prod', 'registry.example.com/team-a/app')).toEqual([]);
      expect(names('eu-1', 'dev', 'registry.example.com/team-a/app')).toEqual([]);
    });

    it('lets "*" stay within one path segment and "**" cross "/"', () => {
      expect(names('', '', 'registry.example.com/team-b/base:1')).toEqual(['any']);
      expect(names('', '', 'registry.example.com/team-b/x/base:1')).toEqual([]);
    });

    it('matches Docker Hub images by their normalized name', () => {
      expect(names('', '', 'nginx')).toEqual(['hub']);
      expect(names('', '', 'docker.io/library/nginx:1.27')).toEqual(['hub']);
      expect(names('', '', 'bitnami/nginx')).toEqual([]);
    });

    it('matches wildcard hosts', () => {
      expect(names('', '', '123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/app:v1')).toEqual(['ecr']);
    });

    it('drops disabled policies', () => {
      expect(names('', '', 'disabled.example.com/x:1')).toEqual([]);
      expect(set.policies.map((p) => p.policy.name)).not.toContain('off');
    });

    it('lets an unknown cluster or namespace match only "*"', () => {
      expect(names('', '', 'registry.example.com/team-a/app')).toEqual([]);
    });
  });

  describe('coversHost', () => {
    it('is true only for hosts some enabled image glob can reach', () => {
      expect(set.coversHost('registry.example.com')).toBe(true);
      expect(set.coversHost('REGISTRY.example.com')).toBe(true);
      expect(set.coversHost('docker.io')).toBe(true);
      expect(set.coversHost('123456789012.dkr.ecr.us-east-1.amazonaws.com')).toBe(true);
      expect(set.coversHost('disabled.example.com')).toBe(false);
      expect(set.coversHost('127.0.0.1:5000')).toBe(false);
      expect(set.coversHost('evil.example.com')).toBe(false);
      expect(set.coversHost('registry.example.com.evil.net')).toBe(false);
    });
  });

  it('takes the host part of an image glob', () => {
    expect(hostPartOf('127.0.0.1:5000/team/**')).toBe('127.0.0.1:5000');
    expect(hostPartOf('*.DKR.ecr.*.amazonaws.com/**')).toBe('*.dkr.ecr.*.amazonaws.com');
  });

  describe('policyHash', () => {
    const base = policy({ name: 'p', images: ['r.example.com/**'], attestors });

    it('is stable and changes with the policy or its witness keys', () => {
      expect(policyHash(base, [release])).toBe(policyHash({ ...base }, [release]));
      expect(policyHash({ ...base, mode: 'audit' }, [release])).not.toBe(policyHash(base, [release]));
      expect(policyHash(base, [testKey('release').witness])).not.toBe(policyHash(base, [release]));
    });

    it('ignores witnesses the policy does not name', () => {
      expect(policyHash(base, [release, testKey('other').witness])).toBe(policyHash(base, [release]));
    });
  });

  describe('prefilteredGlob', () => {
    it('answers exactly what the plain glob answers', () => {
      const text = (chars: string[]) =>
        fc.array(fc.constantFrom(...chars), { maxLength: 12 }).map((a) => a.join(''));
      fc.assert(
        fc.property(
          text(['a', 'b', '/', '*', '**', '?', '.']),
          text(['a', 'b', '/', '.']),
          (pattern, input) => {
            fc.pre(pattern.length > 0 && !pattern.includes('***'));
            expect(prefilteredGlob(pattern).test(input)).toBe(compileGlob(pattern).test(input));
          },
        ),
        { numRuns: 2000 },
      );
    });
  });
});
