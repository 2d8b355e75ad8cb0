import { InputError } from './errors';

/** A parsed image reference: `registry/repository[:tag][@digest]`. */
export interface ImageReference {
  readonly registry: string;
  readonly repository: string;
  readonly tag: string | undefined;
  readonly digest: string | undefined;
}

const DIGEST = /^sha256:[a-f0-9]{64}$/;
const ANY_DIGEST = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
// distribution's path-component grammar, anchored per component so it stays linear.
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const HOST =
  /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$/;

export const DOCKER_HUB = 'docker.io';
/** Other names of Docker Hub's registry that image references and events use. */
const DOCKER_HUB_ALIASES: ReadonlySet<string> = new Set(['index.docker.io', 'registry-1.docker.io']);
const MAX_REFERENCE_LENGTH = 4096;

/** A sha256 manifest digest (the only kind Signet signs). */
export const isDigest = (value: unknown): value is string => typeof value === 'string' && DIGEST.test(value);
/** Any well-formed OCI digest, whatever its algorithm. */
export const isAnyDigest = (value: unknown): value is string =>
  typeof value === 'string' && ANY_DIGEST.test(value);
export const isTag = (value: unknown): value is string => typeof value === 'string' && TAG.test(value);
export const isRegistryHost = (value: unknown): value is string =>
  typeof value === 'string' && value.length <= 255 && HOST.test(value);
export const isRepository = (value: unknown): value is string =>
  typeof value === 'string' &&
  value.length > 0 &&
  value.length <= 255 &&
  value.split('/').every((component) => PATH_COMPONENT.test(component));

/**
 * The one spelling of a registry host that Signet compares: lowercase (DNS names are
 * case-insensitive), Docker Hub's aliases as `docker.io`, and without the HTTPS default port
 * (`registry.example.com:443` is `registry.example.com`). Plain-HTTP port 80 is kept: for a
 * registry reached over HTTPS, `:80` names another port.
 */
export function canonicalHost(host: string): string {
  let canonical = host.toLowerCase();
  if (canonical.endsWith(':443')) canonical = canonical.slice(0, -4);
  return DOCKER_HUB_ALIASES.has(canonical) ? DOCKER_HUB : canonical;
}

/** The registry namespace of a repository: its first path segment. */
export const registryNamespace = (repository: string): string => repository.split('/', 1)[0] ?? repository;

/**
 * Parses an image reference the way container runtimes do: a first component with a `.` or `:`
 * or equal to `localhost` is a registry host, otherwise the image is on Docker Hub (and a
 * one-component name is under `library/`). `field` names the input in errors.
 */
export function parseReference(input: string, field = 'image'): ImageReference {
  if (typeof input !== 'string' || input.length === 0) {
    throw new InputError('REFERENCE_INVALID', field, 'must be a non-empty image reference');
  }
  if (input.length > MAX_REFERENCE_LENGTH) {
    throw new InputError('REFERENCE_INVALID', field, `is longer than ${MAX_REFERENCE_LENGTH} characters`);
  }
  let rest = input;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!isDigest(digest)) {
      throw new InputError('REFERENCE_INVALID', field, `"${truncate(input)}" has an invalid digest`);
    }
  }
  let registry = DOCKER_HUB;
  const slash = rest.indexOf('/');
  if (slash > 0) {
    const first = rest.slice(0, slash);
    if (first.includes('.') || first.includes(':') || first === 'localhost' || first.startsWith('[')) {
      registry = first;
      rest = rest.slice(slash + 1);
    }
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon >= 0) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!isTag(tag))
      throw new InputError('REFERENCE_INVALID', field, `"${truncate(input)}" has an invalid tag`);
  }
  if (!isRegistryHost(registry)) {
    throw new InputError('REFERENCE_INVALID', field, `"${truncate(input)}" has an invalid registry host`);
  }
  registry = canonicalHost(registry);
  let repository = rest;
  if (registry === DOCKER_HUB && !repository.includes('/')) repository = `library/${repository}`;
  if (!isRepository(repository)) {
    throw new InputError(
      'REFERENCE_INVALID',
      field,
      `"${truncate(input)}" has an invalid repository name (lowercase letters, digits and separators only)`,
    );
  }
  if (tag === undefined && digest === undefined) tag = 'latest';
  return { registry, repository, tag, digest };
}

/** `registry/repository`, the name a signature identity and a policy glob see. */
export const repositoryName = (ref: Pick<ImageReference, 'registry' | 'repository'>): string =>
  `${ref.registry}/${ref.repository}`;

/** The canonical string of a reference: `registry/repository[:tag][@digest]`. */
export function formatReference(ref: ImageReference): string {
  return `${repositoryName(ref)}${ref.tag !== undefined ? `:${ref.tag}` : ''}${ref.digest !== undefined ? `@${ref.digest}` : ''}`;
}

/** The cosign signature tag of a digest: `sha256-<hex>.sig`. */
export const signatureTag = (digest: string): string => `${digest.replace(':', '-')}.sig`;
/** The OCI referrers fallback tag of a digest: `sha256-<hex>`. */
export const referrersFallbackTag = (digest: string): string => digest.replace(':', '-');

/** Tags cosign and OCI tooling use for signature artifacts: never signed, never a trigger. */
export const isSignatureArtifactTag = (tag: string | undefined): boolean =>
  tag !== undefined && /^sha256-[a-f0-9]{64}(?:\.(?:sig|att|sbom))?$/.test(tag);

function truncate(value: string): string {
  return value.length > 200 ? `${value.slice(0, 200)}…` : value;
}
