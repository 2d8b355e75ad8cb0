/**
 * What the verify Lambda answers, built once per configuration: `lib/admission`'s
 * AdmissionController over `lib/verification`'s ImageVerifier, the same objects the local
 * service's `/admission` and `/verify` routes use (cli/verify-routes.ts), over the same
 * registries and keys `createSignet` assembles.
 */
import { AdmissionController, type AdmissionReviewResponse } from '../lib/admission/controller';
import { parseVerifyRequest } from '../lib/admission/requests';
import type { SignetConfig } from '../lib/config/types';
import type { Logger } from '../lib/core/logger';
import { createSignet } from '../lib/signet';
import type { ImageDecision } from '../lib/verification/decision';

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

export function buildVerifyRoutes(config: SignetConfig, options: { readonly logger: Logger }): VerifyRoutes {
  const signet = createSignet(config, { logger: options.logger });
  const verifier = signet.verifier;
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
