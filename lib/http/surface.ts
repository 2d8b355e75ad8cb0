/**
 * Signet's HTTP surface, once for every edge: the local service (`signet serve`) and the verify
 * Lambda adapt their requests to `HttpRequest` and write out the `HttpResponse` this answers.
 *
 * Order of work on every request: route by method and path; refuse when over the in-flight cap;
 * check credentials from the request line and headers; only then read the body (bounded while it
 * streams) and parse it. A refused request's body is never read: its answer asks the edge to
 * close the connection instead.
 */
import type { AdmissionController } from '../admission/controller';
import { CLUSTER_HEADER, checkCluster, parseVerifyRequest } from '../admission/requests';
import { AccessError, InputError, describeError, httpStatusOf, type SignetError } from '../core/errors';
import type { Logger } from '../core/logger';
import { canonicalHost } from '../core/reference';
import { parsePushNotification, type PushNotificationKind } from '../events';
import type { PushEvent, ScanEvent } from '../events/types';
import { pushOfScan } from '../signing/conditions';
import type { IntakeOutcome, PushIntake } from '../signing/intake';
import { REGISTRY_NOT_CONFIGURED } from '../signing/report';
import type { ImageDecision } from '../verification/decision';
import type { ImageVerifier } from '../verification/verifier';
import {
  checkVerificationAccess,
  eventSenderOf,
  redactPath,
  type EventSender,
  type VerificationAccess,
} from './auth';
import { parseJsonBody, readBody, type BodySource } from './body';

/** A request as an edge received it. Header names are lowercase. */
export interface HttpRequest {
  readonly method: string;
  /** The path without the query string. */
  readonly path: string;
  readonly headers: Readonly<Record<string, string | undefined>>;
  readonly body: BodySource;
}

/**
 * What to answer: a JSON body (or, with `contentType`, the text in `body` as is), extra headers,
 * and whether to close the connection afterwards.
 */
export interface HttpResponse {
  readonly status: number;
  readonly body: unknown;
  /** Set for a body that is text to send as is (the Prometheus exposition format). */
  readonly contentType?: string;
  readonly headers: Readonly<Record<string, string>>;
  /** The body was not (fully) read: close rather than read it to reuse the connection. */
  readonly close: boolean;
}

/** The verification endpoints' dependencies. */
export interface VerificationSurface {
  readonly access: VerificationAccess;
  readonly controller: AdmissionController;
  readonly verifier: ImageVerifier;
  /**
   * Told about every `POST /verify` decision (the ledger), after it is final; it must return at
   * once (queue, never write), and what it throws is ignored.
   */
  readonly onDecision?: (decision: ImageDecision) => void;
}

/** The push-event endpoints' dependencies. */
export interface EventsSurface {
  /** Who may deliver events, and for which registries. Empty: every event request is refused. */
  readonly senders: readonly EventSender[];
  /** True for hosts listed in `registries[]`; no other host is ever contacted. */
  readonly isConfigured: (host: string) => boolean;
  readonly intake: PushIntake;
  /** Told what became of every push an authenticated delivery named (metrics). */
  readonly observe?: (source: PushNotificationKind, outcomes: readonly IntakeOutcome[]) => void;
}

/** Requests served at once; beyond the cap a request is answered 503 before its body is read. */
export class InFlightLimit {
  private current = 0;

  constructor(readonly max: number) {}

  /** Takes a slot; false when every slot is taken. */
  tryEnter(): boolean {
    if (this.current >= this.max) return false;
    this.current++;
    return true;
  }

  leave(): void {
    this.current = Math.max(0, this.current - 1);
  }

  get inFlight(): number {
    return this.current;
  }
}

/** Whether the service can do its work, and what is wrong when it cannot (`/readyz`). */
export interface Readiness {
  readonly ready: boolean;
  /** One entry per check: `ok`, or the reason it failed. */
  readonly checks: Readonly<Record<string, { readonly ok: boolean; readonly reason?: string }>>;
}

/** The operational endpoints: readiness and metrics. Unauthenticated, like `/healthz`. */
export interface OperationsSurface {
  readonly readiness: () => Promise<Readiness>;
  /** The Prometheus text exposition of the service's metrics. */
  readonly metrics?: () => Promise<{ readonly contentType: string; readonly text: string }>;
}

/**
 * The status page (`GET /ui`): HTML rendered by the edge, served behind the same credentials as
 * `/verify` (so only with a verification surface).
 */
export interface StatusPageSurface {
  readonly render: () => Promise<string>;
}

/** Everything the surface answers with. */
export interface SurfaceDeps {
  readonly logger: Logger;
  readonly maxBodyBytes: number;
  readonly verification?: VerificationSurface;
  readonly statusPage?: StatusPageSurface;
  readonly events?: EventsSurface;
  readonly operations?: OperationsSurface;
  readonly limit?: InFlightLimit;
}

const EVENT_KINDS: Readonly<Record<string, PushNotificationKind>> = {
  '/events/distribution': 'distribution',
  '/events/ecr': 'ecr',
  '/events/harbor': 'harbor',
};

/** Answers one request. Never throws: every failure becomes a JSON error body. */
export async function handleRequest(request: HttpRequest, deps: SurfaceDeps): Promise<HttpResponse> {
  const method = request.method.toUpperCase();
  if (request.path === '/healthz') {
    return method === 'GET' ? json(200, { status: 'ok' }) : refuse(notAllowed(method, request.path));
  }
  const operations = deps.operations;
  if (operations !== undefined && (request.path === '/readyz' || request.path === '/metrics')) {
    if (method !== 'GET') return refuse(notAllowed(method, request.path));
    try {
      if (request.path === '/readyz') {
        const readiness = await operations.readiness();
        return json(readiness.ready ? 200 : 503, {
          status: readiness.ready ? 'ready' : 'not ready',
          ...readiness,
        });
      }
      if (operations.metrics === undefined)
        return refuse(new AccessError('NOT_FOUND', `GET ${request.path}`));
      const { contentType, text } = await operations.metrics();
      return { status: 200, body: text, contentType, headers: {}, close: false };
    } catch (err) {
      return failure(err, request, deps);
    }
  }
  if (deps.limit !== undefined && !deps.limit.tryEnter()) {
    return { ...refuse(new AccessError('OVERLOADED', 'too many requests in flight; retry')), headers: RETRY };
  }
  try {
    return await route(method, request, deps);
  } catch (err) {
    return failure(err, request, deps);
  } finally {
    deps.limit?.leave();
  }
}

const RETRY = { 'retry-after': '1' };

async function route(method: string, request: HttpRequest, deps: SurfaceDeps): Promise<HttpResponse> {
  const kind = EVENT_KINDS[request.path];
  if (kind !== undefined && deps.events !== undefined) {
    if (method !== 'POST') return refuse(notAllowed(method, request.path));
    return events(kind, request, deps.events, deps);
  }
  if (deps.verification !== undefined) {
    const access = checkVerificationAccess(
      deps.verification.access,
      request.path,
      request.headers['authorization'],
    );
    const path = access.$case === 'granted' ? access.path : request.path;
    const isPage = path === '/ui' && deps.statusPage !== undefined;
    const isRoute = path === '/admission' || path.startsWith('/admission/') || path === '/verify' || isPage;
    if (isRoute || access.$case === 'refused') {
      if (access.$case === 'refused') {
        deps.logger.warn('unauthorized verification request', {
          path: redactPath(request.path, deps.verification.access),
        });
        return unauthorized(access.message, 'Bearer');
      }
      if (isPage && deps.statusPage !== undefined) {
        if (method !== 'GET') return refuse(notAllowed(method, path));
        return statusPage(await deps.statusPage.render());
      }
      if (method !== 'POST') return refuse(notAllowed(method, path));
      return verification(path, request, deps.verification, deps);
    }
  }
  return refuse(new AccessError('NOT_FOUND', `${method} ${redacted(request.path, deps)}`));
}

async function events(
  kind: PushNotificationKind,
  request: HttpRequest,
  surface: EventsSurface,
  deps: SurfaceDeps,
): Promise<HttpResponse> {
  const sender = eventSenderOf(surface.senders, request.headers['authorization']);
  if (sender === undefined) {
    deps.logger.warn('unauthorized event delivery', { path: request.path });
    return unauthorized(
      surface.senders.length === 0
        ? 'events are refused: no events token is configured (server.eventsToken) and no embedded registry runs'
        : 'a valid events bearer token is required',
      'Bearer',
    );
  }
  const body = parseJsonBody(await readBody(request.body, deps.maxBodyBytes), 'EVENT_INVALID');
  const normalized = parsePushNotification(kind, body, request.headers['content-type']);
  const ignored: IgnoredPush[] = normalized.ignored.map((i) => ({ field: i.field, reason: i.reason }));
  const refused: IntakeOutcome[] = [];
  // The same host checks for pushes and scan results: only configured hosts the sender speaks for.
  const admit = <T extends Pick<PushEvent, 'registry' | 'repository' | 'digest'>>(
    items: readonly T[],
    asPush: (item: T) => PushEvent,
  ): T[] =>
    items.filter((item) => {
      const host = canonicalHost(item.registry);
      const why = !surface.isConfigured(host)
        ? REGISTRY_NOT_CONFIGURED
        : sender.registries !== undefined && !sender.registries.has(host)
          ? `registry not served by sender ${sender.name}`
          : undefined;
      if (why === undefined) return true;
      // Acknowledged so that the sender's queue moves on; the host is never contacted.
      deps.logger.warn('push ignored', { registry: item.registry, repository: item.repository, reason: why });
      const event = asPush(item);
      ignored.push({ image: imageOf(event), reason: why });
      refused.push({ $case: 'ignored', reason: why, event });
      return false;
    });
  const admissible = admit(normalized.events, (event) => event);
  const scans = admit(normalized.scans ?? [], pushOfScan);
  const outcomes = [
    ...(admissible.length > 0 ? await surface.intake.accept(admissible) : []),
    ...(scans.length > 0 ? await acceptScans(surface.intake, scans, deps.logger) : []),
  ];
  surface.observe?.(kind, [...refused, ...outcomes]);
  const accepted: AcceptedPushView[] = [];
  for (const outcome of outcomes) {
    if (outcome.$case === 'accepted')
      accepted.push({ id: outcome.id, image: imageOf(outcome.event), duplicate: outcome.duplicate });
    else ignored.push({ image: imageOf(outcome.event), reason: outcome.reason });
  }
  return json(accepted.length > 0 ? 202 : 200, { accepted, ignored });
}

/** Scan results for the intake; one that cannot take them acknowledges and ignores them. */
async function acceptScans(
  intake: PushIntake,
  scans: readonly ScanEvent[],
  logger: Logger,
): Promise<readonly IntakeOutcome[]> {
  if (intake.acceptScans !== undefined) return intake.acceptScans(scans);
  logger.warn('scan results ignored: this intake does not take them', { scans: scans.length });
  return scans.map((scan) => ({
    $case: 'ignored',
    reason: 'scan results are not taken here',
    event: pushOfScan(scan),
  }));
}

/** An accepted push in an events answer. */
interface AcceptedPushView {
  readonly id: string;
  readonly image: string;
  readonly duplicate: boolean;
}

/** A push (or notification entry) that will not be signed, and why. */
interface IgnoredPush {
  readonly field?: string;
  readonly image?: string;
  readonly reason: string;
}

const imageOf = (event: PushEvent): string =>
  `${event.registry}/${event.repository}${event.tag !== undefined ? `:${event.tag}` : ''}@${event.digest}`;

async function verification(
  path: string,
  request: HttpRequest,
  surface: VerificationSurface,
  deps: SurfaceDeps,
): Promise<HttpResponse> {
  if (path === '/verify') {
    const body = parseJsonBody(await readBody(request.body, deps.maxBodyBytes), 'REQUEST_INVALID');
    const parsed = parseVerifyRequest(body);
    const decision = await surface.verifier.verifyWithin(parsed.image, {
      namespace: parsed.namespace,
      cluster: parsed.cluster,
    });
    try {
      surface.onDecision?.(decision);
    } catch (err) {
      deps.logger.warn('verify decision not recorded', { cause: describeError(err) });
    }
    return json(200, decision);
  }
  const cluster = clusterOf(path, request.headers[CLUSTER_HEADER]);
  const review = parseJsonBody(await readBody(request.body, deps.maxBodyBytes), 'ADMISSION_REVIEW_INVALID');
  return json(200, await surface.controller.review(review, cluster));
}

/** Nothing on the page may load anything, run anything, or be framed. */
const PAGE_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy':
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};

const statusPage = (document: string): HttpResponse => ({
  status: 200,
  body: document,
  contentType: 'text/html; charset=utf-8',
  headers: PAGE_HEADERS,
  close: false,
});

/** The cluster a webhook call is for: the path segment after `/admission/`, else the header. */
function clusterOf(path: string, header: string | undefined): string | undefined {
  if (path.startsWith('/admission/')) return checkCluster(path.slice('/admission/'.length), 'cluster (path)');
  if (header !== undefined && header !== '') return checkCluster(header, CLUSTER_HEADER);
  return undefined;
}

const json = (status: number, body: unknown): HttpResponse => ({ status, body, headers: {}, close: false });

const notAllowed = (method: string, path: string): AccessError =>
  new AccessError('METHOD_NOT_ALLOWED', `${method} ${path}`);

const unauthorized = (message: string, scheme: string): HttpResponse => ({
  ...refuse(new AccessError('UNAUTHORIZED', message)),
  headers: { 'www-authenticate': scheme },
});

/** An answer given without reading the body: the connection is closed after it. */
const refuse = (err: SignetError): HttpResponse => ({ ...errorResponse(err), close: true });

function redacted(path: string, deps: SurfaceDeps): string {
  return deps.verification !== undefined ? redactPath(path, deps.verification.access) : path;
}

/** The JSON error body every Signet endpoint answers: code, field (for input errors), message. */
export function errorBody(err: unknown): { error: { code: string; field?: string; message: string } } {
  const code = (err as Partial<SignetError> | null)?.code ?? 'INTERNAL';
  return {
    error: {
      code,
      ...(err instanceof InputError ? { field: err.field } : {}),
      message: describeError(err),
    },
  };
}

function errorResponse(err: unknown): HttpResponse {
  return { status: httpStatusOf(err), body: errorBody(err), headers: {}, close: false };
}

function failure(err: unknown, request: HttpRequest, deps: SurfaceDeps): HttpResponse {
  const response = errorResponse(err);
  if (response.status >= 500) {
    deps.logger.error('request failed', {
      path: redacted(request.path, deps),
      code: (err as Partial<SignetError> | null)?.code,
      cause: describeError(err),
    });
  }
  // A body refused for its size was not read to its end: do not keep the connection.
  return err instanceof InputError && err.code === 'BODY_TOO_LARGE' ? { ...response, close: true } : response;
}
