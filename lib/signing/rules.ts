import type { SigningRule, Trigger } from '../config/types';
import { compileGlob, type Glob } from '../core/glob';
import { canonicalHost, registryNamespace } from '../core/reference';

/** Where a push landed, as far as rule matching cares. */
export interface RuleTarget {
  readonly registry: string;
  readonly repository: string;
}

/**
 * Signing rules with their globs compiled once, over the configured registries: a rule covers
 * only hosts of `registries[]` (its own `registries` narrow further), so no event can point
 * signing at a host the configuration does not name.
 */
export class RuleSet {
  private readonly compiled: readonly { readonly rule: SigningRule; readonly globs: readonly Glob[] }[];
  private readonly hosts: ReadonlySet<string>;

  constructor(rules: readonly SigningRule[], registries: readonly string[]) {
    this.compiled = rules.map((rule) => ({ rule, globs: rule.repositories.map(compileGlob) }));
    this.hosts = new Set(registries.map(canonicalHost));
  }

  /** True when the host is one of the configured registries (compared canonically). */
  isConfigured(host: string): boolean {
    return this.hosts.has(canonicalHost(host));
  }

  /** Rules whose scope covers the repository, whatever their trigger or state. */
  covering(target: RuleTarget): SigningRule[] {
    const host = canonicalHost(target.registry);
    if (!this.hosts.has(host)) return [];
    const namespace = registryNamespace(target.repository);
    return this.compiled
      .filter(
        ({ rule, globs }) =>
          (rule.registries.length === 0 || rule.registries.includes(host)) &&
          (rule.namespaces.includes(namespace) || globs.some((glob) => glob.test(target.repository))),
      )
      .map(({ rule }) => rule);
  }

  /**
   * Rules that sign this push. On push (`automatic`) only enabled automatic rules sign; a manual
   * `signet sign` runs enabled rules of either trigger, or exactly the named rule.
   */
  matching(target: RuleTarget, trigger: Trigger, ruleName?: string): SigningRule[] {
    const covering = this.covering(target);
    if (ruleName !== undefined) return covering.filter((rule) => rule.name === ruleName);
    return covering.filter((rule) => rule.enabled && (trigger === 'manual' || rule.trigger === 'automatic'));
  }

  byName(name: string): SigningRule | undefined {
    return this.compiled.find(({ rule }) => rule.name === name)?.rule;
  }
}
