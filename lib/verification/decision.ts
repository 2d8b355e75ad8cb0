/**
 * What verification answers, at three levels: per witness (`WitnessResult`), per attestor set and
 * policy (`PolicyResult`), and per image (`ImageDecision`). The admission controller, `POST /verify`
 * and `signet verify` all show these same objects.
 */
import type { PolicyMode } from '../config/types';
import type { Reason } from './reasons';
import type { WitnessResult } from './witness-check';

/** One attestor set: at least `count` of its witnesses must be valid. */
export interface AttestorSetResult {
  readonly count: number;
  readonly valid: number;
  readonly passed: boolean;
  readonly witnesses: readonly WitnessResult[];
}

/** What a policy does to the image: nothing, block it, or admit it with a warning. */
export type PolicyEffect = 'pass' | 'deny' | 'warn';

/** The verdict of one policy on one image. */
export interface PolicyResult {
  readonly policy: string;
  readonly mode: PolicyMode;
  readonly failurePolicy: 'deny' | 'allow';
  /** Every attestor set passed. */
  readonly verified: boolean;
  readonly effect: PolicyEffect;
  /** Why it was not verified. */
  readonly reason: Reason | undefined;
  readonly attestors: readonly AttestorSetResult[];
  /** Reused from the positive-result cache. */
  readonly cached: boolean;
}

/** allow: admitted cleanly; warn: admitted with warnings; deny: refused. */
export type Verdict = 'allow' | 'warn' | 'deny';

/** The decision on one image reference in one cluster and Kubernetes namespace. */
export interface ImageDecision {
  /** The reference as given. */
  readonly image: string;
  /** Canonical `registry/repository[:tag][@digest]`, when it parsed. */
  readonly reference: string | undefined;
  /** The digest that was verified (given, or resolved from the tag). */
  readonly digest: string | undefined;
  readonly namespace: string | undefined;
  readonly cluster: string | undefined;
  readonly allowed: boolean;
  readonly verdict: Verdict;
  /** The reason of the (first) denying or warning policy, or of the image-level decision. */
  readonly reason: Reason | undefined;
  /** One line for humans: who decided what, and why. */
  readonly message: string;
  readonly policies: readonly PolicyResult[];
  /** Each under 120 characters (what Kubernetes shows well). */
  readonly warnings: readonly string[];
  /** `<image as given>@<digest>` when a selecting policy asks for `mutateDigest` on a tag reference. */
  readonly mutatedImage: string | undefined;
}

/** Kubernetes truncates long warnings; keep each under 120 characters. */
export const MAX_WARNING_LENGTH = 119;

/** Shortens `image` in the middle so that `prefix + image + suffix` fits a warning. */
export function warningText(prefix: string, image: string, suffix: string): string {
  const room = MAX_WARNING_LENGTH - prefix.length - suffix.length;
  let shown = image;
  if (image.length > room) {
    const keep = Math.max(0, room - 1);
    const head = Math.ceil(keep / 2);
    shown = keep > 0 ? `${image.slice(0, head)}…${image.slice(image.length - (keep - head))}` : '';
  }
  const text = `${prefix}${shown}${suffix}`;
  return text.length <= MAX_WARNING_LENGTH ? text : `${text.slice(0, MAX_WARNING_LENGTH - 1)}…`;
}
