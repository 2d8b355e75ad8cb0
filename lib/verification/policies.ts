/**
 * Policies compiled once: their cluster, Kubernetes-namespace and image globs, the registry hosts
 * their image globs can reach, and a content hash that keys cached verification results. Selecting
 * the policies of an image is then a handful of linear glob tests, with no allocation per request.
 */
import { createHash } from 'node:crypto';
import type { Policy, Witness } from '../config/types';
import { compileGlob, matchesAny, type Glob } from '../core/glob';
import { repositoryName, type ImageReference } from '../core/reference';

/** One enabled policy, ready to select images. */
export interface CompiledPolicy {
  readonly policy: Policy;
  /**
   * sha256 over the policy and the key references of the witnesses it names: a cached result is
   * only reused by the very same requirements.
   */
  readonly hash: string;
  readonly clusters: readonly Glob[];
  readonly namespaces: readonly Glob[];
  readonly images: readonly Glob[];
  /** The host part of each image glob (lower-cased). */
  readonly hosts: readonly Glob[];
}

/** Where a selection is asked for: the cluster id and the Kubernetes namespace ('' when unknown). */
export interface SelectionScope {
  readonly cluster: string;
  readonly namespace: string;
}

/** The registry-host part of an image glob: everything before the first `/`. */
export function hostPartOf(imageGlob: string): string {
  const slash = imageGlob.indexOf('/');
  return (slash < 0 ? imageGlob : imageGlob.slice(0, slash)).toLowerCase();
}

/**
 * A glob whose literal head and tail are checked first: a plain `startsWith`/`endsWith` rules out
 * most policies for an image before the (linear, but per-character) matcher runs at all. Both are
 * necessary conditions of a match, so the answer never changes.
 */
export function prefilteredGlob(pattern: string): Glob {
  const glob = compileGlob(pattern);
  const first = pattern.search(/[*?]/);
  if (first < 0) return glob;
  const head = pattern.slice(0, first);
  const last = Math.max(pattern.lastIndexOf('*'), pattern.lastIndexOf('?'));
  const tail = pattern.slice(last + 1);
  return {
    pattern,
    test: (input) =>
      input.length >= head.length + tail.length &&
      input.startsWith(head) &&
      input.endsWith(tail) &&
      glob.test(input),
  };
}

/** JSON with object keys sorted, so equal values hash equally whatever their key order. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/** The content hash of a policy together with the witnesses it relies on. */
export function policyHash(policy: Policy, witnesses: readonly Witness[]): string {
  const named = new Set(policy.attestors.flatMap((set) => set.witnesses));
  // A rotating witness's keys and windows count too: removing a key must not keep its results cached.
  const keys = witnesses
    .filter((w) => named.has(w.name))
    .map((w) => ({ name: w.name, key: w.key, rotation: w.rotation }));
  return createHash('sha256').update(canonicalJson({ policy, keys })).digest('hex');
}

/**
 * The enabled policies of a configuration. Disabled policies are dropped here: they select nothing
 * and, above all, make no registry host reachable.
 */
export class PolicySet {
  readonly policies: readonly CompiledPolicy[];
  private readonly hostGlobs: readonly Glob[];

  constructor(policies: readonly Policy[], witnesses: readonly Witness[]) {
    this.policies = policies
      .filter((p) => p.enabled)
      .map((policy) => ({
        policy,
        hash: policyHash(policy, witnesses),
        clusters: policy.clusters.map(prefilteredGlob),
        namespaces: policy.namespaces.map(prefilteredGlob),
        images: policy.images.map(prefilteredGlob),
        hosts: policy.images.map((g) => prefilteredGlob(hostPartOf(g))),
      }));
    // Distinct host patterns only: `registry.example.com` appears in most image globs.
    const distinct = new Map<string, Glob>();
    for (const p of this.policies) for (const g of p.hosts) distinct.set(g.pattern, g);
    this.hostGlobs = [...distinct.values()];
  }

  /**
   * True when some enabled policy's image globs could cover an image on `host`. Verification
   * contacts no registry for which this is false (a pod spec must not make Signet call anywhere).
   */
  coversHost(host: string): boolean {
    return matchesAny(this.hostGlobs, host.toLowerCase());
  }

  /** The enabled policies that apply to `ref` in this cluster and Kubernetes namespace. */
  select(scope: SelectionScope, ref: Pick<ImageReference, 'registry' | 'repository'>): CompiledPolicy[] {
    const name = repositoryName(ref);
    return this.policies.filter(
      (p) =>
        matchesAny(p.images, name) &&
        matchesAny(p.namespaces, scope.namespace) &&
        matchesAny(p.clusters, scope.cluster),
    );
  }
}
