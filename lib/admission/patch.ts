/**
 * RFC 6902 JSON Patch for `mutateDigest`: every admitted tag reference is replaced by the same
 * string plus `@<digest>`, so the kubelet pulls exactly the manifest Signet verified.
 */
import type { ImageSite } from './review';

/** The one operation Signet writes. */
export interface ReplaceOperation {
  readonly op: 'replace';
  readonly path: string;
  readonly value: string;
}

/**
 * The patch for a request: one `replace` per site whose image has a pinned form. On UPDATE, images
 * the request does not change are left alone: rewriting them would roll out workloads nobody
 * touched (and ephemeral containers, once added, cannot be changed at all).
 */
export function digestPatch(
  sites: readonly ImageSite[],
  pinned: (image: string) => string | undefined,
  operation: 'CREATE' | 'UPDATE',
): ReplaceOperation[] {
  const ops: ReplaceOperation[] = [];
  for (const site of sites) {
    if (site.problem !== undefined || (operation === 'UPDATE' && site.unchanged)) continue;
    const value = pinned(site.image);
    if (value !== undefined && value !== site.image) ops.push({ op: 'replace', path: site.pointer, value });
  }
  return ops;
}

/** The `patch` field of an AdmissionResponse: the JSON of the operations, base64. */
export const encodePatch = (ops: readonly ReplaceOperation[]): string =>
  Buffer.from(JSON.stringify(ops), 'utf8').toString('base64');

const unescape = (segment: string): string => segment.replace(/~1/g, '/').replace(/~0/g, '~');

/**
 * Applies `replace` operations to a copy of `document`, as the apiserver would; throws when a path
 * does not exist (RFC 6902 requires the target to exist). Used to re-check patched objects.
 */
export function applyPatch<T>(document: T, ops: readonly ReplaceOperation[]): T {
  const copy = structuredClone(document);
  for (const op of ops) {
    if (op.op !== 'replace' || !op.path.startsWith('/'))
      throw new Error(`unsupported patch operation ${JSON.stringify(op)}`);
    const segments = op.path.slice(1).split('/').map(unescape);
    const last = segments.pop() as string;
    let node: unknown = copy;
    for (const segment of segments) {
      node = Array.isArray(node)
        ? node[Number(segment)]
        : (node as Record<string, unknown> | null)?.[segment];
      if (node === undefined || node === null || typeof node !== 'object')
        throw new Error(`${op.path} does not exist`);
    }
    const parent = node as Record<string, unknown>;
    if (!(last in parent)) throw new Error(`${op.path} does not exist`);
    parent[last] = op.value;
  }
  return copy;
}
