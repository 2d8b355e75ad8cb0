/**
 * Who may make Signet act over HTTP (lib/http/auth.ts, and its use in lib/http/surface.ts): every
 * refused request is refused from its request line and headers alone, so its body is never read;
 * the secret path and the Lambda's token-in-path grant what they should and nothing else; and a
 * path written to the logs never carries the secret.
 */
import {
  bearerToken,
  checkVerificationAccess,
  eventSender,
  eventSenderOf,
  redactPath,
  secretDigest,
  secretMatches,
  type VerificationAccess,
} from '../../lib/http/auth';
import { handleRequest, type HttpResponse, type SurfaceDeps } from '../../lib/http/surface';
import {
  DISTRIBUTION_EVENTS_TYPE,
  RecordingIntake,
  capturingLogger,
  distributionPush,
  httpRequest,
  verificationSurface,
} from '../support/http-surface';
import { recordingBody, type RecordingBody } from '../support/recording-body';
import { fixture } from '../admission/fixtures';

const EVENTS_TOKEN = 'events-token-7f3a9c1e5b2d4f60';
const EMBEDDED_TOKEN = 'embedded-token-0c4e8a2f6b1d3e57';
const WEBHOOK_TOKEN = 'webhook-token-5e1f9b3d7a2c4e68';
const SECRET_PATH = 'hooks-4b8d2f6a1c3e5g7i';
const CONFIGURED = 'registry.example.com';
const EMBEDDED = '127.0.0.1:5000';

const basic = (user: string, password: string): string =>
  `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

/** Authorization headers that must not pass, by what they are. */
const WRONG_CREDENTIALS: readonly (readonly [string, Record<string, string>])[] = [
  ['no Authorization header', {}],
  ['a wrong bearer token', { authorization: 'Bearer not-the-token-at-all-1234' }],
  ['the right token under Basic', { authorization: basic('signet', EVENTS_TOKEN) }],
  ['the right token as the Basic user', { authorization: basic(EVENTS_TOKEN, '') }],
  ['the right token without a scheme', { authorization: EVENTS_TOKEN }],
  ['the right token with a suffix', { authorization: `Bearer ${EVENTS_TOKEN}x` }],
  ['a prefix of the right token', { authorization: `Bearer ${EVENTS_TOKEN.slice(0, -1)}` }],
  ['an empty bearer token', { authorization: 'Bearer ' }],
];

describe('secretMatches', () => {
  const secret = secretDigest('correct horse battery staple');

  it('accepts the secret itself', () => {
    expect(secretMatches('correct horse battery staple', secret)).toBe(true);
  });

  it.each([
    ['nothing', undefined],
    ['an empty string', ''],
    ['a prefix', 'correct horse'],
    ['a longer string', 'correct horse battery staple!'],
    ['another case', 'Correct horse battery staple'],
  ])('refuses %s', (_what, presented) => {
    expect(secretMatches(presented, secret)).toBe(false);
  });
});

describe('bearerToken', () => {
  it.each([
    ['Bearer abc', 'abc'],
    ['bearer abc', 'abc'],
    ['BEARER abc', 'abc'],
    ['Bearer \tabc \t', 'abc'],
  ])('reads %j', (header, token) => {
    expect(bearerToken(header)).toBe(token);
  });

  it.each([undefined, '', 'Bearer', 'Bearer ', 'Bearerabc', 'Basic abc', 'Bearer a b', 'Token abc', 'abc'])(
    'finds no token in %j',
    (header) => {
      expect(bearerToken(header)).toBeUndefined();
    },
  );
});

describe('eventSenderOf', () => {
  const senders = [
    eventSender('events token', EVENTS_TOKEN),
    eventSender('embedded registry', EMBEDDED_TOKEN, ['LOCALHOST:5000', EMBEDDED]),
  ];

  it('names the sender whose token is presented, and what it may speak for', () => {
    expect(eventSenderOf(senders, `Bearer ${EVENTS_TOKEN}`)?.name).toBe('events token');
    expect(eventSenderOf(senders, `Bearer ${EVENTS_TOKEN}`)?.registries).toBeUndefined();
    const embedded = eventSenderOf(senders, `Bearer ${EMBEDDED_TOKEN}`);
    expect(embedded?.name).toBe('embedded registry');
    // Hosts are kept canonical, as events name them.
    expect([...(embedded?.registries ?? [])].sort()).toEqual([EMBEDDED, 'localhost:5000']);
  });

  it.each(WRONG_CREDENTIALS)('finds no sender for %s', (_what, headers) => {
    expect(eventSenderOf(senders, headers.authorization)).toBeUndefined();
  });

  it('finds no sender when none is configured', () => {
    expect(eventSenderOf([], `Bearer ${EVENTS_TOKEN}`)).toBeUndefined();
  });
});

describe('checkVerificationAccess', () => {
  const bearer = secretDigest(WEBHOOK_TOKEN);

  describe('when nothing is configured', () => {
    it('grants every path as it is', () => {
      const open: VerificationAccess = { bearer: undefined, secretPath: undefined, tokenInPath: false };
      expect(checkVerificationAccess(open, '/admission', undefined)).toEqual({
        $case: 'granted',
        path: '/admission',
      });
    });
  });

  describe('when a secret path is configured', () => {
    const access: VerificationAccess = { bearer: undefined, secretPath: SECRET_PATH, tokenInPath: false };

    it.each([
      [`/${SECRET_PATH}/admission`, '/admission'],
      [`/${SECRET_PATH}/admission/eu-1`, '/admission/eu-1'],
      [`/${SECRET_PATH}/verify`, '/verify'],
    ])('grants %s as %s', (path, rest) => {
      expect(checkVerificationAccess(access, path, undefined)).toEqual({ $case: 'granted', path: rest });
    });

    it.each([
      '/admission',
      '/verify',
      `/${SECRET_PATH}`,
      `/${SECRET_PATH}x/admission`,
      `/${SECRET_PATH.slice(1)}/admission`,
      `/${SECRET_PATH.toUpperCase()}/admission`,
      `/admission/${SECRET_PATH}`,
      `//${SECRET_PATH}/admission`,
    ])('refuses %s', (path) => {
      expect(checkVerificationAccess(access, path, undefined).$case).toBe('refused');
    });
  });

  describe('when a bearer token is configured', () => {
    const access: VerificationAccess = { bearer, secretPath: undefined, tokenInPath: false };

    it('grants the token in the Authorization header', () => {
      expect(checkVerificationAccess(access, '/verify', `Bearer ${WEBHOOK_TOKEN}`)).toEqual({
        $case: 'granted',
        path: '/verify',
      });
    });

    it('does not take the token as a path segment (that is the Lambda only)', () => {
      expect(checkVerificationAccess(access, `/${WEBHOOK_TOKEN}/verify`, undefined).$case).toBe('refused');
    });
  });

  describe('when both a secret path and a bearer token are configured', () => {
    const access: VerificationAccess = { bearer, secretPath: SECRET_PATH, tokenInPath: false };

    it('requires both', () => {
      const path = `/${SECRET_PATH}/admission`;
      expect(checkVerificationAccess(access, path, `Bearer ${WEBHOOK_TOKEN}`)).toEqual({
        $case: 'granted',
        path: '/admission',
      });
      expect(checkVerificationAccess(access, path, undefined).$case).toBe('refused');
      expect(checkVerificationAccess(access, '/admission', `Bearer ${WEBHOOK_TOKEN}`).$case).toBe('refused');
    });
  });

  describe('when the token may stand in the path (the verify Lambda)', () => {
    const access: VerificationAccess = { bearer, secretPath: undefined, tokenInPath: true };

    it.each([
      [`/${WEBHOOK_TOKEN}/admission`, '/admission'],
      [`/${WEBHOOK_TOKEN}/admission/eu-1`, '/admission/eu-1'],
      [`/${WEBHOOK_TOKEN}/verify`, '/verify'],
    ])('grants %s as %s', (path, rest) => {
      expect(checkVerificationAccess(access, path, undefined)).toEqual({ $case: 'granted', path: rest });
    });

    it('grants the token in the header too', () => {
      expect(checkVerificationAccess(access, '/verify', `Bearer ${WEBHOOK_TOKEN}`)).toEqual({
        $case: 'granted',
        path: '/verify',
      });
    });

    it.each(['/verify', `/${WEBHOOK_TOKEN}`, `/not-${WEBHOOK_TOKEN}/verify`, `/${WEBHOOK_TOKEN}x/verify`])(
      'refuses %s without the header',
      (path) => {
        expect(checkVerificationAccess(access, path, undefined).$case).toBe('refused');
      },
    );
  });
});

describe('redactPath', () => {
  const secretPathAccess: VerificationAccess = {
    bearer: undefined,
    secretPath: SECRET_PATH,
    tokenInPath: false,
  };
  const lambdaAccess: VerificationAccess = {
    bearer: secretDigest(WEBHOOK_TOKEN),
    secretPath: undefined,
    tokenInPath: true,
  };

  it.each(['/admission', '/admission/eu-1', '/verify', '/healthz', '/events/distribution'])(
    'leaves the route %s as it is',
    (path) => {
      expect(redactPath(path, secretPathAccess)).toBe(path);
    },
  );

  it('hides an unknown first segment, which may be a mistyped secret', () => {
    expect(redactPath('/hooks-typo/admission', secretPathAccess)).toBe('/…/admission');
  });

  // Shapes of a request path holding the secret: the secret path (local service) or the token
  // (Lambda) first, as configured, with what follows it.
  const handled = (secret: string): string[] => [`/${secret}/admission`, `/${secret}/verify`, `/${secret}/`];
  // Shapes a misconfigured webhook URL produces (`${base}/${secret}` with a trailing slash in
  // base, a URL without the route, the secret put last).
  const leaking = (secret: string): string[] => [
    `/${secret}`,
    `//${secret}/admission`,
    `/admission/${secret}`,
  ];

  it.each(handled(SECRET_PATH))('never returns the secret path in %s', (path) => {
    expect(redactPath(path, secretPathAccess)).not.toContain(SECRET_PATH);
  });

  it.each(handled(WEBHOOK_TOKEN))('never returns the Lambda token in %s', (path) => {
    expect(redactPath(path, lambdaAccess)).not.toContain(WEBHOOK_TOKEN);
  });

  it.each(leaking(SECRET_PATH))('never returns the secret path in %s', (path) => {
    expect(redactPath(path, secretPathAccess)).not.toContain(SECRET_PATH);
  });

  it.each(leaking(WEBHOOK_TOKEN))('never returns the Lambda token in %s', (path) => {
    expect(redactPath(path, lambdaAccess)).not.toContain(WEBHOOK_TOKEN);
  });
});

describe('handleRequest: credentials are checked before the body is read', () => {
  const EVENT_ROUTES = ['/events/distribution', '/events/ecr', '/events/harbor'] as const;
  let intake: RecordingIntake;
  let lines: string[];
  let deps: SurfaceDeps;
  let events: NonNullable<SurfaceDeps['events']>;
  let verification: ReturnType<typeof verificationSurface>;

  beforeEach(() => {
    intake = new RecordingIntake();
    const captured = capturingLogger();
    lines = captured.lines;
    events = {
      senders: [
        eventSender('events token', EVENTS_TOKEN),
        eventSender('embedded registry', EMBEDDED_TOKEN, [EMBEDDED]),
      ],
      isConfigured: (host) => host === CONFIGURED || host === EMBEDDED,
      intake,
    };
    verification = verificationSurface({
      bearer: secretDigest(WEBHOOK_TOKEN),
      secretPath: undefined,
      tokenInPath: false,
    });
    deps = { logger: captured.logger, maxBodyBytes: 1024 * 1024, events, verification };
  });

  function expectRefusedUnread(response: HttpResponse, body: RecordingBody): void {
    expect(response.status).toBe(401);
    expect(response.body).toMatchObject({ error: { code: 'UNAUTHORIZED' } });
    expect(response.headers['www-authenticate']).toBe('Bearer');
    // The body stays on the socket: the edge closes the connection instead of draining it.
    expect(response.close).toBe(true);
    expect(body.touched).toBe(false);
    expect(body.pulled).toBe(0);
  }

  describe.each(EVENT_ROUTES)('on %s', (route) => {
    it.each(WRONG_CREDENTIALS)('answers 401 to %s, and reads nothing', async (_what, headers) => {
      const body = recordingBody(JSON.stringify(distributionPush(CONFIGURED)));
      const response = await handleRequest(
        httpRequest('POST', route, body.source, { 'content-type': DISTRIBUTION_EVENTS_TYPE, ...headers }),
        deps,
      );
      expectRefusedUnread(response, body);
      expect(intake.batches).toHaveLength(0);
    });

    it('answers 401 to the verification bearer token: a webhook caller cannot make Signet sign', async () => {
      const body = recordingBody(JSON.stringify(distributionPush(CONFIGURED)));
      const response = await handleRequest(
        httpRequest('POST', route, body.source, { authorization: `Bearer ${WEBHOOK_TOKEN}` }),
        deps,
      );
      expectRefusedUnread(response, body);
    });

    it('refuses every event when no sender is configured', async () => {
      const body = recordingBody(JSON.stringify(distributionPush(CONFIGURED)));
      const response = await handleRequest(
        httpRequest('POST', route, body.source, { authorization: `Bearer ${EVENTS_TOKEN}` }),
        { ...deps, events: { ...events, senders: [] } },
      );
      expectRefusedUnread(response, body);
    });
  });

  it('reads the body once the events token is presented', async () => {
    const body = recordingBody(JSON.stringify(distributionPush(CONFIGURED)));
    const response = await handleRequest(
      httpRequest('POST', '/events/distribution', body.source, {
        'content-type': DISTRIBUTION_EVENTS_TYPE,
        authorization: `Bearer ${EVENTS_TOKEN}`,
      }),
      deps,
    );
    expect(response.status).toBe(202);
    expect(body.finished).toBe(true);
    expect(intake.accepted).toHaveLength(1);
  });

  describe.each(['/admission', '/admission/eu-1', '/verify'])(
    'on %s with a bearer token configured',
    (route) => {
      const cases = [
        ...WRONG_CREDENTIALS,
        ['the events token', { authorization: `Bearer ${EVENTS_TOKEN}` }] as const,
        ['the webhook token under Basic', { authorization: basic('signet', WEBHOOK_TOKEN) }] as const,
      ];

      it.each(cases)('answers 401 to %s, and reads nothing', async (_what, headers) => {
        const body = recordingBody(JSON.stringify(fixture('pod-create')));
        const response = await handleRequest(httpRequest('POST', route, body.source, headers), deps);
        expectRefusedUnread(response, body);
      });
    },
  );

  it('answers a verification request that carries the token', async () => {
    const body = recordingBody(JSON.stringify({ image: `${CONFIGURED}/team-a/app:v1` }));
    const response = await handleRequest(
      httpRequest('POST', '/verify', body.source, { authorization: `Bearer ${WEBHOOK_TOKEN}` }),
      deps,
    );
    expect(response.status).toBe(200);
    // No policy covers it: denied, and no registry was asked.
    expect(response.body).toMatchObject({ allowed: false, reason: { code: 'NO_MATCHING_POLICY' } });
    expect(verification.registries.requested).toEqual([]);
  });

  describe('with a secret path (local service)', () => {
    beforeEach(() => {
      deps = {
        ...deps,
        verification: verificationSurface({ bearer: undefined, secretPath: SECRET_PATH, tokenInPath: false }),
      };
    });

    it.each(['/admission', '/verify', '/wrong-secret/admission', `/${SECRET_PATH}x/verify`])(
      'answers 401 to %s, and reads nothing',
      async (path) => {
        const body = recordingBody(JSON.stringify({ image: `${CONFIGURED}/team-a/app:v1` }));
        expectRefusedUnread(await handleRequest(httpRequest('POST', path, body.source), deps), body);
      },
    );

    it('serves /<secret>/verify and /<secret>/admission/<cluster>', async () => {
      const verify = await handleRequest(
        httpRequest('POST', `/${SECRET_PATH}/verify`, recordingBody('{"image":"nginx:1"}').source),
        deps,
      );
      expect(verify.status).toBe(200);
      const review = fixture('pod-create');
      const admission = await handleRequest(
        httpRequest('POST', `/${SECRET_PATH}/admission/eu-1`, recordingBody(JSON.stringify(review)).source),
        deps,
      );
      expect(admission.status).toBe(200);
      expect(admission.body).toMatchObject({ response: { uid: review.request.uid, allowed: false } });
    });

    it('logs refused requests without the secret path', async () => {
      for (const path of [
        `/${SECRET_PATH}/nothing-here`,
        '/wrong-secret/admission',
        `/${SECRET_PATH}x/verify`,
      ]) {
        await handleRequest(httpRequest('POST', path, recordingBody('{}').source), deps);
      }
      expect(lines.length).toBeGreaterThan(0);
      expect(lines.join('\n')).not.toContain(SECRET_PATH);
    });

    it('logs a refused request for /<secret> without the secret path', async () => {
      await handleRequest(httpRequest('POST', `/${SECRET_PATH}`, recordingBody('{}').source), deps);
      expect(lines.length).toBeGreaterThan(0);
      expect(lines.join('\n')).not.toContain(SECRET_PATH);
    });
  });

  describe('with the token in the path (verify Lambda)', () => {
    beforeEach(() => {
      deps = {
        logger: deps.logger,
        maxBodyBytes: deps.maxBodyBytes,
        verification: verificationSurface({
          bearer: secretDigest(WEBHOOK_TOKEN),
          secretPath: undefined,
          tokenInPath: true,
        }),
      };
    });

    it('serves /<token>/verify and /<token>/admission', async () => {
      const verify = await handleRequest(
        httpRequest('POST', `/${WEBHOOK_TOKEN}/verify`, recordingBody('{"image":"nginx:1"}').source),
        deps,
      );
      expect(verify.status).toBe(200);
      const admission = await handleRequest(
        httpRequest(
          'POST',
          `/${WEBHOOK_TOKEN}/admission`,
          recordingBody(JSON.stringify(fixture('pod-create'))).source,
        ),
        deps,
      );
      expect(admission.status).toBe(200);
    });

    it.each(['/verify', `/not-the-token/verify`, `/${WEBHOOK_TOKEN}x/admission`])(
      'answers 401 to %s without the header, and reads nothing',
      async (path) => {
        const body = recordingBody('{"image":"nginx:1"}');
        expectRefusedUnread(await handleRequest(httpRequest('POST', path, body.source), deps), body);
      },
    );

    it('logs refused requests without the token', async () => {
      await handleRequest(
        httpRequest('POST', `/${WEBHOOK_TOKEN}x/admission`, recordingBody('{}').source),
        deps,
      );
      await handleRequest(
        httpRequest('POST', '/verify', recordingBody('{}').source, {
          authorization: `Bearer ${WEBHOOK_TOKEN}x`,
        }),
        deps,
      );
      expect(lines.length).toBeGreaterThan(0);
      expect(lines.join('\n')).not.toContain(WEBHOOK_TOKEN);
    });
  });
});
