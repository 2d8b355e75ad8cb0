import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { SignetConfig } from '../lib/config/types';
import { InputError } from '../lib/core/errors';
import type { Logger } from '../lib/core/logger';
import { parsePushNotification } from '../lib/events';
import type { NormalizedEvents } from '../lib/events/types';
import { reportFailed, type SigningPipeline, type SigningReport } from '../lib/signing/pipeline';
import { parseJson, readBody, sendError, sendJson } from './http';

/** What the local service needs: the same pipeline the sign Lambda runs. */
export interface ServiceDeps {
  readonly config: SignetConfig;
  readonly pipeline: SigningPipeline;
  readonly logger: Logger;
}

/** A route handler: gets the parsed request, answers status + JSON. */
type Route = (req: IncomingMessage, body: Buffer) => Promise<{ status: number; body: unknown }>;

const EVENT_SOURCES = { distribution: 'distribution', ecr: 'ecr', harbor: 'harbor' } as const;

/**
 * The local service: push notifications in (`/events/*`), signatures out. Answers 2xx only when
 * every signature for the notification is in the registry, so a registry re-delivers on failure.
 */
export class SignetService {
  readonly server: Server;
  private readonly routes = new Map<string, Route>();

  constructor(private readonly deps: ServiceDeps) {
    for (const [path, kind] of Object.entries(EVENT_SOURCES)) {
      this.routes.set(`POST /events/${path}`, (req, body) => this.events(kind, req, body));
    }
    this.routes.set('GET /healthz', async () => ({ status: 200, body: { status: 'ok' } }));
    this.server = createServer((req, res) => void this.dispatch(req, res));
    this.server.keepAliveTimeout = 65_000;
  }

  /** Adds a route (the verification endpoints register themselves here). */
  route(method: string, path: string, handler: Route): void {
    this.routes.set(`${method} ${path}`, handler);
  }

  listen(port: number, host: string): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve(this.server.address() as AddressInfo);
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeIdleConnections();
    });
  }

  private async dispatch(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?', 1)[0] ?? '/';
    const route = this.routes.get(`${req.method} ${path}`) ?? this.prefixRoute(req.method, path);
    if (route === undefined) {
      const known = [...this.routes.keys()].some((key) => key.endsWith(` ${path}`));
      sendJson(res, known ? 405 : 404, {
        error: { code: known ? 'METHOD_NOT_ALLOWED' : 'NOT_FOUND', message: `${req.method} ${path}` },
      });
      req.resume();
      return;
    }
    try {
      const body =
        req.method === 'GET' ? Buffer.alloc(0) : await readBody(req, this.deps.config.server.maxBodyBytes);
      const answer = await route(req, body);
      sendJson(res, answer.status, answer.body);
    } catch (err) {
      if (!(err instanceof InputError))
        this.deps.logger.error('request failed', { path, cause: String(err) });
      sendError(res, err);
    }
  }

  /** Routes registered as `METHOD /prefix/*` match any deeper path (`/admission/<cluster>`). */
  private prefixRoute(method: string | undefined, path: string): Route | undefined {
    for (const [key, route] of this.routes) {
      if (!key.endsWith('/*')) continue;
      const prefix = key.slice(0, -1);
      if (`${method} ${path}`.startsWith(prefix)) return route;
    }
    return undefined;
  }

  private async events(
    kind: keyof typeof EVENT_SOURCES,
    req: IncomingMessage,
    body: Buffer,
  ): Promise<{ status: number; body: unknown }> {
    const normalized: NormalizedEvents = parsePushNotification(
      kind,
      parseJson(body),
      req.headers['content-type'],
    );
    const reports: SigningReport[] = await Promise.all(
      normalized.events.map((event) => this.deps.pipeline.handlePush(event)),
    );
    const failed = reports.some(reportFailed);
    return {
      // 503 makes the registry (or any webhook sender) deliver the notification again.
      status: failed ? 503 : 200,
      body: { reports, ignored: normalized.ignored },
    };
  }
}
