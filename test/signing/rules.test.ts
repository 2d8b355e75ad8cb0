import type { SigningRule } from '../../lib/config/types';
import { RuleSet, type RuleTarget } from '../../lib/signing/rules';

/** A rule as the config loader produces it, every field set. */
function rule(name: string, scope: Partial<SigningRule> = {}): SigningRule {
  return {
    name,
    namespaces: [],
    repositories: [],
    registries: [],
    witness: 'ci',
    algorithm: 'ECDSA_SHA_256',
    signatureType: 'default',
    trigger: 'automatic',
    enabled: true,
    recursive: false,
    bundle: false,
    annotations: {},
    ...scope,
  };
}

const ECR = '123456789012.dkr.ecr.us-west-2.amazonaws.com';
const LOCAL = 'localhost:5000';
const HOSTS = [ECR, LOCAL, 'docker.io'];
const at = (registry: string, repository: string): RuleTarget => ({ registry, repository });
const names = (rules: readonly SigningRule[]): string[] => rules.map((r) => r.name);

describe('RuleSet', () => {
  describe('namespace scope', () => {
    const rules = new RuleSet([rule('team-a', { namespaces: ['team-a'] })], HOSTS);

    it('covers every repository in the namespace, at any depth', () => {
      expect(names(rules.covering(at(LOCAL, 'team-a/app')))).toEqual(['team-a']);
      expect(names(rules.covering(at(LOCAL, 'team-a/sub/app')))).toEqual(['team-a']);
    });

    it('does not cover a namespace that only starts with the same letters', () => {
      expect(rules.covering(at(LOCAL, 'team-ab/app'))).toEqual([]);
      expect(rules.covering(at(LOCAL, 'team/a-app'))).toEqual([]);
    });

    it('does not cover the namespace name when it appears further down', () => {
      expect(rules.covering(at(LOCAL, 'org/team-a/app'))).toEqual([]);
    });

    it('covers Docker Hub official images through the library namespace', () => {
      const hub = new RuleSet([rule('library', { namespaces: ['library'] })], HOSTS);
      expect(names(hub.covering(at('docker.io', 'library/ubuntu')))).toEqual(['library']);
    });
  });

  describe('repository globs', () => {
    const rules = new RuleSet(
      [
        rule('apps', { repositories: ['team-b/app-*'] }),
        rule('deep', { repositories: ['platform/**'] }),
        rule('exact', { repositories: ['tools/cli'] }),
      ],
      HOSTS,
    );

    it('covers what a glob matches', () => {
      expect(names(rules.covering(at(LOCAL, 'team-b/app-web')))).toEqual(['apps']);
      expect(names(rules.covering(at(LOCAL, 'platform/x/y/z')))).toEqual(['deep']);
      expect(names(rules.covering(at(LOCAL, 'tools/cli')))).toEqual(['exact']);
    });

    it('does not let "*" cross "/"', () => {
      expect(rules.covering(at(LOCAL, 'team-b/app-web/nested'))).toEqual([]);
    });

    it('does not cover what no glob matches', () => {
      expect(rules.covering(at(LOCAL, 'team-b/api'))).toEqual([]);
      expect(rules.covering(at(LOCAL, 'tools/cli2'))).toEqual([]);
    });

    it('covers a repository matched by a namespace or by a glob of the same rule', () => {
      const either = new RuleSet(
        [rule('either', { namespaces: ['team-a'], repositories: ['shared/base-*'] })],
        HOSTS,
      );
      expect(names(either.covering(at(LOCAL, 'team-a/app')))).toEqual(['either']);
      expect(names(either.covering(at(LOCAL, 'shared/base-node')))).toEqual(['either']);
      expect(either.covering(at(LOCAL, 'shared/other'))).toEqual([]);
    });

    it('throws on an invalid glob', () => {
      expect(() => new RuleSet([rule('bad', { repositories: ['team-[ab]/*'] })], HOSTS)).toThrow(Error);
    });
  });

  describe('registries filter', () => {
    const rules = new RuleSet(
      [
        rule('ecr-only', { namespaces: ['team-a'], registries: [ECR] }),
        rule('everywhere', { namespaces: ['team-a'] }),
      ],
      HOSTS,
    );

    it('covers a listed registry', () => {
      expect(names(rules.covering(at(ECR, 'team-a/app')))).toEqual(['ecr-only', 'everywhere']);
    });

    it('does not cover another registry', () => {
      expect(names(rules.covering(at(LOCAL, 'team-a/app')))).toEqual(['everywhere']);
    });

    it('compares hosts exactly, port included', () => {
      const local = new RuleSet([rule('local', { namespaces: ['team-a'], registries: [LOCAL] })], HOSTS);
      expect(local.covering(at('localhost:5001', 'team-a/app'))).toEqual([]);
      expect(local.covering(at('localhost', 'team-a/app'))).toEqual([]);
    });
  });

  describe('a rule with no namespaces and no repositories', () => {
    it('covers nothing', () => {
      expect(new RuleSet([rule('empty')], HOSTS).covering(at(LOCAL, 'team-a/app'))).toEqual([]);
    });
  });

  describe('matching', () => {
    const rules = new RuleSet(
      [
        rule('auto', { namespaces: ['team-a'] }),
        rule('manual', { namespaces: ['team-a'], trigger: 'manual' }),
        rule('disabled', { namespaces: ['team-a'], enabled: false }),
        rule('disabled-manual', { namespaces: ['team-a'], trigger: 'manual', enabled: false }),
        rule('elsewhere', { namespaces: ['team-b'] }),
      ],
      HOSTS,
    );
    const target = at(LOCAL, 'team-a/app');

    describe('on the automatic trigger (a push)', () => {
      it('returns only enabled automatic rules', () => {
        expect(names(rules.matching(target, 'automatic'))).toEqual(['auto']);
      });

      it('returns nothing for a repository no rule covers', () => {
        expect(rules.matching(at(LOCAL, 'team-c/app'), 'automatic')).toEqual([]);
      });
    });

    describe('on the manual trigger (signet sign)', () => {
      it('returns enabled rules of either trigger', () => {
        expect(names(rules.matching(target, 'manual'))).toEqual(['auto', 'manual']);
      });
    });

    describe('with a rule name', () => {
      it('returns exactly the named rule when it covers the repository', () => {
        expect(names(rules.matching(target, 'manual', 'manual'))).toEqual(['manual']);
        expect(names(rules.matching(target, 'manual', 'auto'))).toEqual(['auto']);
      });

      it('returns nothing when the named rule does not cover the repository', () => {
        expect(rules.matching(target, 'manual', 'elsewhere')).toEqual([]);
      });

      it('returns nothing for an unknown name', () => {
        expect(rules.matching(target, 'manual', 'nope')).toEqual([]);
      });
    });

    it('keeps the configuration order', () => {
      const ordered = new RuleSet(
        [
          rule('z', { namespaces: ['team-a'] }),
          rule('a', { repositories: ['team-a/*'] }),
          rule('m', { repositories: ['**'] }),
        ],
        HOSTS,
      );
      expect(names(ordered.matching(target, 'automatic'))).toEqual(['z', 'a', 'm']);
    });
  });

  describe('covering', () => {
    it('returns rules whatever their trigger or state', () => {
      const rules = new RuleSet(
        [
          rule('auto', { namespaces: ['team-a'] }),
          rule('manual', { namespaces: ['team-a'], trigger: 'manual' }),
          rule('disabled', { namespaces: ['team-a'], enabled: false }),
        ],
        HOSTS,
      );
      expect(names(rules.covering(at(LOCAL, 'team-a/app')))).toEqual(['auto', 'manual', 'disabled']);
    });

    it('returns the rule objects it was given', () => {
      const only = rule('only', { namespaces: ['team-a'] });
      expect(new RuleSet([only], HOSTS).covering(at(LOCAL, 'team-a/app'))[0]).toBe(only);
    });
  });

  describe('byName', () => {
    const prod = rule('prod', { namespaces: ['team-a'] });
    const off = rule('off', { namespaces: ['team-a'], enabled: false });
    const rules = new RuleSet([prod, off], HOSTS);

    it('finds a rule by its name', () => {
      expect(rules.byName('prod')).toBe(prod);
    });

    it('finds a disabled rule too', () => {
      expect(rules.byName('off')).toBe(off);
    });

    it('is undefined for an unknown name', () => {
      expect(rules.byName('Prod')).toBeUndefined();
      expect(rules.byName('')).toBeUndefined();
    });
  });

  describe('with no rules', () => {
    it('covers and matches nothing', () => {
      const rules = new RuleSet([], HOSTS);
      expect(rules.covering(at(LOCAL, 'team-a/app'))).toEqual([]);
      expect(rules.matching(at(LOCAL, 'team-a/app'), 'manual')).toEqual([]);
      expect(rules.byName('any')).toBeUndefined();
    });
  });
});
