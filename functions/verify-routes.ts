/**
 * What the verify Lambda answers, built once per configuration: `lib/admission`'s
 * AdmissionController over `lib/verification`'s ImageVerifier, the same objects the local
 * service's `/admission` and `/verify` routes use (cli/verify-routes.ts), over the same
 * registries and keys `createSignet` assembles.
 */
import { AdmissionController, type AdmissionReviewResponse } from '../lib/admission/controller';
import type { SignetConfig } from '../lib/config/types';
import { InputError } from '../lib/core/errors';
import type { Logger } from '../lib/core/logger';
import { createSignet } from '../lib/signet';
import type { ImageDecision } from '../lib/verification/decision';
import { ImageVerifier } from '../lib/verification/verifier';

/** An AdmissionReview answer: the response body, and whether it admitted the object. */
export interface AdmissionAnswer {
  readonly allowed: boolean;
  /** The AdmissionReview (admission.k8s.io/v1) response. */
  readonly body: AdmissionReviewResponse;
}

/** The verify endpoint's routes, over parsed JSON bodies. */
export interface VerifyRoutes {
  /** `POST /admission[/<cluster>]`: an AdmissionReview request in, its response out. */
  admission(review: unknown, cluster: string | undefined): Promise<AdmissionAnswer>;
  /** `POST /verify`: `{image, namespace?, cluster?}` in, the image's decision out. */
  verify(request: unknown): Promise<ImageDecision>;
}

/** The local service's header for the cluster id when the path does not carry it. */
export const CLUSTER_HEADER = 'x-signet-cluster';
const CLUSTER_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/;

/** A cluster id from the path or the header; the same rule as the local service. */
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

/** Reads `{image, namespace?, cluster?}`, as the local service's `/verify` does. */
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

export function buildVerifyRoutes(config: SignetConfig, options: { readonly logger: Logger }): VerifyRoutes {
  const signet = createSignet(config, { logger: options.logger });
  const verifier = new ImageVerifier({
    config,
    registries: signet.registries,
    keys: signet.keys,
    logger: options.logger,
  });
  const controller = new AdmissionController({ verifier, logger: options.logger });
  return {
    async admission(review, cluster) {
      const body = await controller.review(review, cluster);
      return { allowed: body.response.allowed, body };
    },
    async verify(request) {
      const parsed = parseVerifyRequest(request);
      return verifier.verify(parsed.image, { namespace: parsed.namespace, cluster: parsed.cluster });
    },
  };
}
