/**
 * Signed identities: a signature vouches for a digest *at a repository*. These functions say which
 * repository a signature must name for an admitted image under a policy's `signedIdentity`
 * (containers/image's names), and read the repository a signature names.
 */
import type { SignedIdentity } from '../config/types';
import { parseReference, repositoryName } from '../core/reference';

/**
 * The repository (`host/path`, host canonical) a signature must name for `image` (the admitted
 * image's canonical `host/path`), or undefined when any repository will do (`matchDigest`).
 */
export function requiredRepository(identity: SignedIdentity, image: string): string | undefined {
  switch (identity.type) {
    case 'matchRepository':
      return image;
    case 'exactRepository':
      return identity.dockerRepository;
    case 'remapIdentity':
      // Only whole path segments match: `mirror.example.com/team` is no prefix of `.../teamx/app`.
      if (image === identity.prefix) return identity.signedPrefix;
      if (image.startsWith(`${identity.prefix}/`))
        return `${identity.signedPrefix}${image.slice(identity.prefix.length)}`;
      return image;
    case 'matchDigest':
      return undefined;
  }
}

/** Whether a signed tag must equal the admitted tag: everywhere but under `matchDigest`. */
export const checksTag = (identity: SignedIdentity): boolean => identity.type !== 'matchDigest';

/**
 * The canonical `host/path` of a signed identity (`docker-reference`, a bundle subject name), or
 * undefined when it is not an image reference. `index.docker.io/library/nginx` reads as
 * `docker.io/library/nginx`, `Registry.Example.com:443/app:v1` as `registry.example.com/app`.
 */
export function signedRepository(identity: string | undefined): string | undefined {
  if (identity === undefined || identity === '') return undefined;
  try {
    return repositoryName(parseReference(identity, 'identity'));
  } catch {
    return undefined;
  }
}
