/**
 * The real middy-wrapped re-verification handler, built by its factory and invoked with the input
 * its EventBridge Scheduler schedule sends, against a real registry (an image signed by Signet's
 * pipeline), the ledger table on the local DynamoDB endpoint (admitted images written as the
 * verify function's recorder writes them), local SSM (configuration) and EventBridge (the bus
 * `Image Trust Lost` goes to). Runs under `npm run test:lambda` (Node.js 22) with test/functions.
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { SSMClient } from '@aws-sdk/client-ssm';
import { readReverifyEnv, reverifyEnvironment } from '../../functions/env';
import { makeReverifyHandler, reverifyDependencies, type ReverifyResult } from '../../functions/reverify';
import type { LambdaHandler } from '../../functions/runtime';
import { parseConfig } from '../../lib/config/load';
import { silentLogger } from '../../lib/core/logger';
import { parseReference } from '../../lib/core/reference';
import { DynamoLedger } from '../../lib/ledger/dynamodb';
import { signatureRecords } from '../../lib/ledger/records';
import type { AdmittedImage } from '../../lib/ledger/types';
import { createSignet } from '../../lib/signet';
import { startDynamoDbEndpoint, type DynamoDbEndpoint } from '../support/dynamodb-endpoint';
import { startEventBridgeEndpoint, type EventBridgeEndpoint } from '../support/eventbridge-endpoint';
import { makeImage, skopeoCopy } from '../support/images';
import { captureOutput, lambdaContext, localClientConfig, useLambdaEnv } from '../support/lambda-harness';
import { startTestRegistry, type TestRegistry } from '../support/registry';
import { startSsmEndpoint, type SsmEndpoint } from '../support/ssm-endpoint';

jest.setTimeout(60_000);

const PARAMETER = '/signet/config';
const TABLE = 'signet-ledger';
const BUS = 'signet-events';
/** What the schedule sends (cdk/signing-service.ts); the handler ignores it. */
const SCHEDULED = { source: 'signet.reverify' };

let dir: string;
let registry: TestRegistry;
let ssm: SsmEndpoint;
let dynamodb: DynamoDbEndpoint;
let bus: EventBridgeEndpoint;
let clients: { ssm: SSMClient; dynamodb: DynamoDBClient; eventBridge: EventBridgeClient };
let ledger: DynamoLedger;
let handler: LambdaHandler<unknown, ReverifyResult>;
const digests: Record<string, string> = {};

useLambdaEnv();
captureOutput();

function configYaml(extra = ''): string {
  return `
registries:
  - host: ${registry.host}
    insecure: true
witnesses:
  - name: release
    key: file://keys/release.pem
signingRules:
  - name: team-a
    namespaces: [team-a]
    witness: release
    algorithm: ECDSA_SHA_256
    signatureType: simple
    trigger: manual
policies:
  - name: production
    enabled: true
    namespaces: [production]
    images: ["${registry.host}/team-a/**"]
    attestors:
      - witnesses: [release]
${extra}`;
}

const REVERIFY = `reverify:
  intervalSeconds: 60
  windowDays: 1
`;

const invoke = (): Promise<ReverifyResult> => handler(SCHEDULED, lambdaContext('signet-reverify'));

const placement = (repository: string, at = Date.now()): AdmittedImage => ({
  reference: `${registry.host}/${repository}:v1`,
  digest: digests[repository] as string,
  namespace: 'production',
  cluster: '',
  verdict: 'allow',
  lastAdmittedAt: at,
});

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'signet-reverify-fn-'));
  [registry, ssm, dynamodb, bus] = await Promise.all([
    startTestRegistry(),
    startSsmEndpoint(),
    startDynamoDbEndpoint(),
    startEventBridgeEndpoint(),
  ]);
  dynamodb.createTable(TABLE);
  await mkdir(path.join(dir, 'keys'));
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  await writeFile(path.join(dir, 'keys', 'release.pem'), privateKey.export({ type: 'pkcs8', format: 'pem' }));
  ssm.put(PARAMETER, configYaml(REVERIFY));

  clients = {
    ssm: new SSMClient(localClientConfig(ssm.url)),
    dynamodb: new DynamoDBClient(localClientConfig(dynamodb.url)),
    eventBridge: new EventBridgeClient(localClientConfig(bus.url)),
  };
  ledger = new DynamoLedger({ client: clients.dynamodb, table: TABLE, retentionDays: 30, windowDays: 1 });

  // Two images signed by Signet's pipeline, their signatures recorded as the sign function does.
  const signet = createSignet(parseConfig(configYaml(), { baseDir: dir }), { logger: silentLogger });
  for (const repository of ['team-a/web', 'team-a/api']) {
    const layout = path.join(dir, `layout-${repository.replace('/', '-')}`);
    await makeImage(layout, { seed: `reverify-fn-${repository}` });
    digests[repository] = await skopeoCopy(layout, `${registry.host}/${repository}:v1`);
    const report = await signet.pipeline.signImage(
      parseReference(`${registry.host}/${repository}:v1`),
      'team-a',
    );
    expect(report.outcomes.map((o) => o.status)).toEqual(['signed']);
    await ledger.write({
      signatures: signatureRecords(report, {
        eventId: undefined,
        recordedBy: 'lambda',
        rules: [],
        now: Date.now(),
      }),
      decisions: [],
      admitted: [],
    });
  }
  signet.keys.close();
  // Admitted by the verify function (its recorder writes these), one of them long ago.
  await ledger.write({
    signatures: [],
    decisions: [],
    admitted: [
      placement('team-a/web'),
      placement('team-a/api'),
      { ...placement('team-a/api'), namespace: 'old', lastAdmittedAt: Date.now() - 3 * 86_400_000 },
    ],
  });

  const env = readReverifyEnv({
    ...reverifyEnvironment({
      configParameter: PARAMETER,
      configTtlSeconds: 0,
      eventBus: BUS,
      ledgerTable: TABLE,
    }),
    LAMBDA_TASK_ROOT: dir,
  });
  handler = makeReverifyHandler(reverifyDependencies(env, clients));
});

afterAll(async () => {
  for (const client of Object.values(clients ?? {})) client.destroy();
  await Promise.all([registry?.stop(), ssm?.close(), dynamodb?.close(), bus?.close()]);
  await rm(dir, { recursive: true, force: true });
});

async function deleteSignature(repository: string): Promise<void> {
  const tag = `${(digests[repository] as string).replace(':', '-')}.sig`;
  const head = await fetch(`${registry.url}/v2/${repository}/manifests/${tag}`, {
    method: 'HEAD',
    headers: { accept: 'application/vnd.oci.image.manifest.v1+json' },
  });
  expect(head.status).toBe(200);
  const res = await fetch(
    `${registry.url}/v2/${repository}/manifests/${head.headers.get('docker-content-digest')}`,
    {
      method: 'DELETE',
    },
  );
  expect(res.status).toBe(202);
}

describe('the re-verification function', () => {
  it('checks the images admitted within the window and finds them trusted', async () => {
    expect(await invoke()).toEqual({
      checked: 2,
      trusted: 2,
      opened: 0,
      stillLost: 0,
      resolved: 0,
      unverifiable: 0,
    });
    expect(bus.events).toEqual([]);
  });

  describe('when an admitted image loses its signature', () => {
    beforeAll(async () => {
      await deleteSignature('team-a/web');
    });

    it('opens a finding in the ledger table and puts Image Trust Lost on the bus, once', async () => {
      expect(await invoke()).toMatchObject({ checked: 2, trusted: 1, opened: 1 });
      const findings = await ledger.findings();
      expect(findings).toEqual([
        expect.objectContaining({
          reference: `${registry.host}/team-a/web:v1`,
          digest: digests['team-a/web'],
          namespace: 'production',
          code: 'NO_SIGNATURES',
          announcedAt: expect.any(Number),
        }),
      ]);
      expect(bus.events).toEqual([
        expect.objectContaining({
          Source: 'signet',
          DetailType: 'Image Trust Lost',
          EventBusName: BUS,
          Detail: expect.objectContaining({
            findingId: findings[0]?.id,
            image: `${registry.host}/team-a/web:v1`,
            digest: digests['team-a/web'],
            code: 'NO_SIGNATURES',
            namespace: 'production',
            cluster: null,
          }),
        }),
      ]);

      expect(await invoke()).toMatchObject({ checked: 2, opened: 0, stillLost: 1 });
      expect(bus.events).toHaveLength(1);
    });
  });

  describe('when the bus refuses the event', () => {
    it('keeps the finding and announces it at the next round', async () => {
      await deleteSignature('team-a/api');
      bus.failNext(1);
      expect(await invoke()).toMatchObject({ opened: 1, stillLost: 1 });
      const api = (await ledger.findings()).find((f) => f.digest === digests['team-a/api']);
      expect(api?.code).toBe('NO_SIGNATURES');
      expect(api?.announcedAt).toBeUndefined();
      expect(bus.events).toHaveLength(1);

      expect(await invoke()).toMatchObject({ opened: 0, stillLost: 2 });
      expect(bus.events.map((e) => e.Detail['digest'])).toEqual([
        digests['team-a/web'],
        digests['team-a/api'],
      ]);
      expect((await ledger.findings()).every((f) => f.announcedAt !== undefined)).toBe(true);
    });
  });

  describe('when the configuration has no reverify section', () => {
    it('does nothing', async () => {
      ssm.put(PARAMETER, configYaml());
      try {
        expect(await invoke()).toEqual({ skipped: 'reverify is not configured' });
      } finally {
        ssm.put(PARAMETER, configYaml(REVERIFY));
      }
    });
  });
});
