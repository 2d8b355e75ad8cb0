/**
 * The verification endpoints of the local service: `POST /admission` (and `/admission/<cluster>`)
 * for the Kubernetes webhook, `POST /verify` for people and pipelines. Optionally guarded by a
 * bearer token (compared in constant time) and/or a secret first path segment
 * (`/<secret>/admission`); `/healthz` is not touched.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { ServerSettings } from '../lib/config/types';
import { InputError, describeError } from '../lib/core/errors';
import type { Logger } from '../lib/core/logger';
import { AdmissionController } from '../lib/admission/controller';
import { CLUSTER_HEADER, checkCluster, parseVerifyRequest } from '../lib/admission/requests';
import type { ImageVerifier } from '../lib/verification/verifier';
import type { SignetService } from './server';

/** What the routes need. */
export interface VerificationRoutesDeps {
  readonly server: Pick<ServerSettings, 'bearerToken' | 'secretPath'>;
  readonly verifier: ImageVerifier;
  readonly logger: Logger;
  /** Defaults to a controller over `verifier`. */
  readonly controller?: AdmissionController;
}

type Handler = Parameters<SignetService['route']>[2];
type Answer = Awaited<ReturnType<Handler>>;

const sha256 = (value: string): Buffer => createHash('sha256').update(value, 'utf8').digest();

/**
 * True when the request carries `Authorization: Bearer <token>`. Both sides are hashed first, so
 * the comparison takes the same time whatever the lengths and contents.
 */
export function bearerMatches(req: Pick<IncomingMessage, 'headers'>, token: string): boolean {
  const header = req.headers.authorization;
  const presented = typeof header === 'string' && /^Bearer /i.test(header) ? header.slice(7).trim() : '';
  return timingSafeEqual(sha256(presented), sha256(token)) && presented.length > 0;
}

const unauthorized = (message: string): Answer => ({
  status: 401,
  body: { error: { code: 'UNAUTHORIZED', message } },
});

/** The cluster a webhook call is for: the path segment after `/admission/`, else the header. */
function clusterOf(req: IncomingMessage, admissionPath: string): string | undefined {
  const path = (req.url ?? '/').split('?', 1)[0] ?? '/';
  if (path.startsWith(`${admissionPath}/`)) {
    const rest = path.slice(admissionPath.length + 1);
    return checkCluster(rest, 'cluster (path)');
  }
  const header = req.headers[CLUSTER_HEADER];
  if (typeof header === 'string' && header !== '') return checkCluster(header, CLUSTER_HEADER);
  return undefined;
}

function parseBody(body: Buffer, code: 'ADMISSION_REVIEW_INVALID' | 'REQUEST_INVALID'): unknown {
  if (body.length === 0) throw new InputError(code, 'body', 'is empty; expected JSON');
  try {
    return JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw new InputError(code, 'body', `is not valid JSON (${describeError(err)})`);
  }
}

/** Registers `/admission`, `/admission/*` and `/verify` (under the secret path when configured). */
export function registerVerificationRoutes(service: SignetService, deps: VerificationRoutesDeps): void {
  const controller =
    deps.controller ?? new AdmissionController({ verifier: deps.verifier, logger: deps.logger });
  const { bearerToken, secretPath } = deps.server;
  const base = secretPath !== undefined ? `/${secretPath}` : '';

  const guarded =
    (handler: Handler): Handler =>
    async (req, body) => {
      if (bearerToken !== undefined && !bearerMatches(req, bearerToken)) {
        deps.logger.warn('unauthorized verification request', { path: (req.url ?? '').split('?', 1)[0] });
        return unauthorized('a valid bearer token is required');
      }
      return handler(req, body);
    };

  const admission: Handler = async (req, body) => {
    const cluster = clusterOf(req, `${base}/admission`);
    const review = parseBody(body, 'ADMISSION_REVIEW_INVALID');
    return { status: 200, body: await controller.review(review, cluster) };
  };

  const verify: Handler = async (_req, body) => {
    const request = parseVerifyRequest(parseBody(body, 'REQUEST_INVALID'));
    const decision = await deps.verifier.verify(request.image, {
      namespace: request.namespace,
      cluster: request.cluster,
    });
    return { status: 200, body: decision };
  };

  service.route('POST', `${base}/admission`, guarded(admission));
  service.route('POST', `${base}/admission/*`, guarded(admission));
  service.route('POST', `${base}/verify`, guarded(verify));
  if (secretPath !== undefined) {
    // Without the secret segment the endpoints exist but refuse, rather than looking absent.
    const refuse: Handler = async (req) => {
      deps.logger.warn('verification request without the secret path', {
        path: (req.url ?? '').split('?', 1)[0],
      });
      return unauthorized('this endpoint requires the configured secret path');
    };
    service.route('POST', '/admission', refuse);
    service.route('POST', '/admission/*', refuse);
    service.route('POST', '/verify', refuse);
  }
}
