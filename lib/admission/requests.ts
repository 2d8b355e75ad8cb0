/**
 * The request shapes both verify edges (the local service and the verify Lambda) accept besides
 * the AdmissionReview itself: the cluster id and the `POST /verify` body.
 */
import { InputError } from '../core/errors';

/** The header naming the cluster when the path (`/admission/<cluster>`) does not. */
export const CLUSTER_HEADER = 'x-signet-cluster';
const CLUSTER_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/;

/** Checks a cluster id from the path, the header or a /verify body. */
export function checkCluster(value: string, field: string): string {
  if (!CLUSTER_ID.test(value)) {
    throw new InputError(
      'REQUEST_INVALID',
      field,
      'must be a cluster id: letters, digits, ".", "_" or "-" (at most 253)',
    );
  }
  return value;
}

/** Reads a `POST /verify` body: `{image, namespace?, cluster?}`. */
export function parseVerifyRequest(value: unknown): {
  image: string;
  namespace: string | undefined;
  cluster: string | undefined;
} {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InputError('REQUEST_INVALID', 'body', 'must be a JSON object {image, namespace?, cluster?}');
  }
  const body = value as Record<string, unknown>;
  for (const key of Object.keys(body)) {
    if (!['image', 'namespace', 'cluster'].includes(key))
      throw new InputError('REQUEST_INVALID', key, 'is not a known field');
  }
  if (typeof body['image'] !== 'string' || body['image'] === '') {
    throw new InputError('REQUEST_INVALID', 'image', 'is required: an image reference');
  }
  const optional = (key: 'namespace' | 'cluster'): string | undefined => {
    const v = body[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string' || v === '')
      throw new InputError('REQUEST_INVALID', key, 'must be a non-empty string');
    return v;
  };
  const cluster = optional('cluster');
  return {
    image: body['image'],
    namespace: optional('namespace'),
    cluster: cluster === undefined ? undefined : checkCluster(cluster, 'cluster'),
  };
}
