import type { SigningRule, Trigger } from '../config/types';
import { compileGlob, type Glob } from '../core/glob';
import { registryNamespace } from '../core/reference';

/** Where a push landed, as far as rule matching cares. */
export interface RuleTarget {
  readonly registry: string;
  readonly repository: string;
}

/** Signing rules with their globs compiled once. */
export class RuleSet {
  private readonly compiled: readonly { readonly rule: SigningRule; readonly globs: readonly Glob[] }[];

  constructor(rules: readonly SigningRule[]) {
    this.compiled = rules.map((rule) => ({ rule, globs: rule.repositories.map(compileGlob) }));
  }

  /** Rules whose scope covers the repository, whatever their trigger or state. */
  covering(target: RuleTarget): SigningRule[] {
    const namespace = registryNamespace(target.repository);
    return this.compiled
      .filter(
        ({ rule, globs }) =>
          (rule.registries.length === 0 || rule.registries.includes(target.registry)) &&
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
