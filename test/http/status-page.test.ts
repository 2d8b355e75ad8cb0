/**
 * `GET /ui` in lib/http/surface.ts: the status page is served behind the same credentials as
 * `/verify` (bearer token, secret path), as HTML that may load nothing, and only by edges that
 * render one.
 */
import { secretDigest } from '../../lib/http/auth';
import { handleRequest, type HttpResponse, type SurfaceDeps } from '../../lib/http/surface';
import { capturingLogger, httpRequest, verificationSurface } from '../support/http-surface';
import { recordingBody } from '../support/recording-body';

const TOKEN = 'webhook-token-3c5e7g9i1k2m4o6q';
const SECRET_PATH = 'hooks-5f1d9b3a7c2e';
const PAGE = '<!doctype html><html><body>status</body></html>';

let renders: number;
let deps: SurfaceDeps;

beforeEach(() => {
  renders = 0;
  deps = {
    logger: capturingLogger().logger,
    maxBodyBytes: 1024,
    verification: verificationSurface({
      bearer: secretDigest(TOKEN),
      secretPath: undefined,
      tokenInPath: false,
    }),
    statusPage: {
      render: () => {
        renders++;
        return Promise.resolve(PAGE);
      },
    },
  };
});

const get = (path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<HttpResponse> =>
  handleRequest(httpRequest(method, path, recordingBody('').source, headers), deps);

describe('GET /ui', () => {
  it('serves the page as HTML that may load nothing and is not cached', async () => {
    const response = await get('/ui', { authorization: `Bearer ${TOKEN}` });
    expect(response).toMatchObject({ status: 200, body: PAGE, contentType: 'text/html; charset=utf-8' });
    expect(response.headers['content-security-policy']).toContain("default-src 'none'");
    expect(response.headers['content-security-policy']).toContain("frame-ancestors 'none'");
    expect(response.headers).toMatchObject({
      'x-content-type-options': 'nosniff',
      'cache-control': 'no-store',
    });
  });

  describe('when the bearer token is missing or wrong', () => {
    it.each([[{}], [{ authorization: 'Bearer wrong-token-000000000000' }]])(
      'answers 401 without rendering (%j)',
      async (headers) => {
        const response = await get('/ui', headers);
        expect(response.status).toBe(401);
        expect(response.headers['www-authenticate']).toBe('Bearer');
        expect(renders).toBe(0);
      },
    );
  });

  describe('when a secret path is configured', () => {
    beforeEach(() => {
      deps = {
        ...deps,
        verification: verificationSurface({ bearer: undefined, secretPath: SECRET_PATH, tokenInPath: false }),
      };
    });

    it('serves it under the secret path only', async () => {
      expect((await get(`/${SECRET_PATH}/ui`)).status).toBe(200);
      expect((await get('/ui')).status).toBe(401);
      expect(renders).toBe(1);
    });
  });

  it('answers 405 to another method', async () => {
    const response = await get('/ui', { authorization: `Bearer ${TOKEN}` }, 'POST');
    expect(response.status).toBe(405);
    expect(renders).toBe(0);
  });

  it('answers 404 on an edge that renders no page (the verify Lambda)', async () => {
    const { statusPage: _page, ...lambda } = deps;
    const response = await handleRequest(
      httpRequest('GET', '/ui', recordingBody('').source, { authorization: `Bearer ${TOKEN}` }),
      lambda,
    );
    expect(response.status).toBe(404);
  });

  it('answers 500 with a JSON error when rendering fails', async () => {
    deps = { ...deps, statusPage: { render: () => Promise.reject(new Error('ledger gone')) } };
    const response = await get('/ui', { authorization: `Bearer ${TOKEN}` });
    expect(response.status).toBe(500);
    expect((response.body as { error: { code: string } }).error.code).toBe('INTERNAL');
  });
});
