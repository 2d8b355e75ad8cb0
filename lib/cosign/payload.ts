import { createHash } from 'node:crypto';
import { DOCKER_HUB } from '../core/reference';

/** The `critical.type` of every cosign image signature payload. */
export const COSIGN_SIGNATURE_TYPE = 'cosign container image signature';

/** Payload annotations Signet writes into `optional`, next to the rule's own annotations. */
export const PAYLOAD_ANNOTATIONS = {
  tag: 'tag',
  rule: 'dev.signet/rule',
  witness: 'dev.signet/witness',
  keyId: 'dev.signet/key-id',
} as const;

/** A cosign "simple signing" payload (containers/image's format, as cosign writes it). */
export interface SimpleSigningPayload {
  readonly critical: {
    readonly identity: { readonly 'docker-reference': string };
    readonly image: { readonly 'docker-manifest-digest': string };
    readonly type: string;
  };
  readonly optional: Readonly<Record<string, unknown>> | null;
}

/**
 * The identity cosign writes: the repository as go-containerregistry names it (Docker Hub images
 * are `index.docker.io/...`).
 */
export function dockerReference(registry: string, repository: string, tag?: string): string {
  const host = registry === DOCKER_HUB ? 'index.docker.io' : registry;
  return `${host}/${repository}${tag !== undefined ? `:${tag}` : ''}`;
}

/** The tag of a `docker-reference` identity (`host/repo:tag`), or undefined for a repository-only one. */
export function identityTag(identity: string): string | undefined {
  const at = identity.indexOf('@');
  const name = at >= 0 ? identity.slice(0, at) : identity;
  const colon = name.lastIndexOf(':');
  return colon > name.lastIndexOf('/') ? name.slice(colon + 1) : undefined;
}

/** What a payload says about the image, for building one. */
export interface PayloadSubject {
  readonly registry: string;
  readonly repository: string;
  readonly digest: string;
  /** Set in `default` mode: the identity then names repository:tag and `optional.tag` repeats it. */
  readonly tag: string | undefined;
  readonly annotations: Readonly<Record<string, string>>;
}

/**
 * Builds the payload bytes. Deterministic (no timestamps, fixed key order), so signing the same
 * image with the same rule twice yields the same payload digest: that is what makes appends
 * idempotent.
 */
export function buildPayload(subject: PayloadSubject): Buffer {
  // The identity's tag always wins over an annotation of the same name; keys are sorted, as
  // cosign (Go's encoding/json over a map) writes them.
  const entries: Record<string, string> = { ...subject.annotations };
  if (subject.tag !== undefined) entries[PAYLOAD_ANNOTATIONS.tag] = subject.tag;
  const optional: Record<string, string> = {};
  for (const key of Object.keys(entries).sort()) optional[key] = entries[key] as string;
  const payload: SimpleSigningPayload = {
    critical: {
      identity: { 'docker-reference': dockerReference(subject.registry, subject.repository, subject.tag) },
      image: { 'docker-manifest-digest': subject.digest },
      type: COSIGN_SIGNATURE_TYPE,
    },
    optional: Object.keys(optional).length > 0 ? optional : null,
  };
  return Buffer.from(JSON.stringify(payload), 'utf8');
}

export const sha256Digest = (bytes: Buffer): string =>
  `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

/** Why a payload was rejected, naming the field. */
export interface PayloadProblem {
  readonly field: string;
  readonly message: string;
}

export const MAX_PAYLOAD_BYTES = 64 * 1024;

/**
 * Parses a simple-signing payload that someone (Signet, cosign, anyone) wrote. Returns the problem
 * instead of throwing: an unreadable payload is a reason to reject one signature, not an error.
 */
export function parsePayload(
  bytes: Buffer,
): { ok: true; payload: SimpleSigningPayload } | { ok: false; problem: PayloadProblem } {
  const fail = (field: string, message: string) => ({ ok: false as const, problem: { field, message } });
  if (bytes.length > MAX_PAYLOAD_BYTES) return fail('payload', `is larger than ${MAX_PAYLOAD_BYTES} bytes`);
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch {
    return fail('payload', 'is not JSON');
  }
  if (!isObject(json)) return fail('payload', 'must be a JSON object');
  const critical = json.critical;
  if (!isObject(critical)) return fail('critical', 'must be an object');
  if (critical.type !== COSIGN_SIGNATURE_TYPE) {
    return fail('critical.type', `must be "${COSIGN_SIGNATURE_TYPE}"`);
  }
  const image = critical.image;
  if (!isObject(image) || typeof image['docker-manifest-digest'] !== 'string') {
    return fail('critical.image.docker-manifest-digest', 'must be a string');
  }
  const identity = critical.identity;
  if (!isObject(identity) || typeof identity['docker-reference'] !== 'string') {
    return fail('critical.identity.docker-reference', 'must be a string');
  }
  const optional = json.optional;
  if (optional !== undefined && optional !== null && !isObject(optional)) {
    return fail('optional', 'must be an object or null');
  }
  return {
    ok: true,
    payload: {
      critical: {
        identity: { 'docker-reference': identity['docker-reference'] },
        image: { 'docker-manifest-digest': image['docker-manifest-digest'] },
        type: COSIGN_SIGNATURE_TYPE,
      },
      optional: (optional as Record<string, unknown> | null | undefined) ?? null,
    },
  };
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);
