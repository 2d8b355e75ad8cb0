/**
 * The DynamoDB ledger through the real SDK client against the local endpoint that speaks
 * DynamoDB's JSON protocol (test/support/dynamodb-endpoint.ts): the shared behaviour
 * (behaviour.ts), with TTL standing in for `prune`; and what only this store meets: pages,
 * unprocessed batch items, throttling and refusals turned into LedgerErrors.
 */
import { Writable } from 'node:stream';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { main, reportError } from '../../cli/main';
import { LedgerError } from '../../lib/ledger/errors';
import { DynamoLedger } from '../../lib/ledger/dynamodb';
import { LEDGER_TABLE_SCHEMA } from '../../lib/ledger/dynamodb-schema';
import { startDynamoDbEndpoint, type DynamoDbEndpoint } from '../support/dynamodb-endpoint';
import { localClientConfig, useLambdaEnv } from '../support/lambda-harness';
import {
  NOW,
  RETENTION_DAYS,
  T0,
  WINDOW_DAYS,
  admitted,
  decision,
  describeLedgerBehaviour,
  digestOf,
  finding,
  signature,
} from './behaviour';

let dynamodb: DynamoDbEndpoint;
let client: DynamoDBClient;
let tables = 0;

// The CLI's client reads region and credentials from the environment, as on an operator's machine.
useLambdaEnv();

class Capture extends Writable {
  text = '';
  override _write(chunk: Buffer, _encoding: string, done: () => void): void {
    this.text += chunk.toString();
    done();
  }
}

/** Runs `signet <args>` in process, as `bin/signet.js` would. */
async function signet(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out = new Capture();
  const err = new Capture();
  const code = await main([...args, '--log-level', 'silent'], out as never, err as never).catch(
    (error: unknown) => reportError(error, err as never),
  );
  return { code, out: out.text, err: err.text };
}

beforeAll(async () => {
  dynamodb = await startDynamoDbEndpoint();
  client = new DynamoDBClient({ ...localClientConfig(dynamodb.url), maxAttempts: 1 });
});
afterAll(async () => {
  client.destroy();
  await dynamodb.close();
});

function newLedger(overrides: Partial<ConstructorParameters<typeof DynamoLedger>[0]> = {}): {
  ledger: DynamoLedger;
  table: string;
} {
  const table = `ledger-${++tables}`;
  dynamodb.createTable(table);
  const ledger = new DynamoLedger({
    client,
    table,
    retentionDays: RETENTION_DAYS,
    windowDays: WINDOW_DAYS,
    clock: () => NOW,
    sleep: () => Promise.resolve(),
    ...overrides,
  });
  return { ledger, table };
}

describe('DynamoLedger', () => {
  afterEach(() => {
    dynamodb.pageItems = 100;
    dynamodb.unprocessNext(0);
    dynamodb.failNext(0);
  });

  describe('as a ledger store', () => {
    describeLedgerBehaviour(() => {
      const { ledger, table } = newLedger();
      return Promise.resolve({
        ledger,
        expire: async (now) => {
          dynamodb.expire(table, now);
          await ledger.prune(now);
        },
      });
    });
  });

  describe('when the table holds more than one page', () => {
    it('reads every page, and stops at the limit', async () => {
      const { ledger } = newLedger();
      const signatures = Array.from({ length: 30 }, (_, i) =>
        signature({ id: `s${String(i).padStart(2, '0')}`, signedAt: T0 + i * 1000 }),
      );
      await ledger.write({ signatures, decisions: [], admitted: [] });
      dynamodb.pageItems = 4;
      expect(await ledger.signatures({ digest: digestOf(1) })).toHaveLength(30);
      expect((await ledger.signatures({ witness: 'release' })).map((s) => s.id)[0]).toBe('s29');
      const calls = dynamodb.calls.length;
      expect(
        (await ledger.signatures({ repository: 'registry.example/team-a/app', limit: 3 })).map((s) => s.id),
      ).toEqual(['s29', 's28', 's27']);
      expect(dynamodb.calls.length - calls).toBe(1);
    });
  });

  describe('when a batch writes more than 25 items', () => {
    it('writes them in chunks of 25', async () => {
      const { ledger, table } = newLedger();
      const decisions = Array.from({ length: 60 }, (_, i) => decision({ id: `d${i}`, decidedAt: T0 + i }));
      await ledger.write({ signatures: [], decisions, admitted: [admitted()] });
      expect(dynamodb.items(table)).toHaveLength(61);
      expect(await ledger.decisions({ digest: digestOf(1) })).toHaveLength(60);
    });
  });

  describe('when DynamoDB leaves batch items unprocessed', () => {
    it('writes them again until they are written', async () => {
      const { ledger } = newLedger();
      dynamodb.unprocessNext(3);
      await ledger.write({
        signatures: [],
        decisions: [
          decision({ id: 'a' }),
          decision({ id: 'b' }),
          decision({ id: 'c' }),
          decision({ id: 'd' }),
        ],
        admitted: [],
      });
      expect(await ledger.decisions({ digest: digestOf(1) })).toHaveLength(4);
    });

    it('gives up with LEDGER_WRITE_FAILED when they stay unprocessed', async () => {
      const { ledger } = newLedger();
      dynamodb.unprocessNext(1000);
      await expect(ledger.write({ signatures: [], decisions: [decision()], admitted: [] })).toThrowWithCode(
        LedgerError,
        'LEDGER_WRITE_FAILED',
      );
    });
  });

  describe('when DynamoDB refuses', () => {
    it('turns a throttled write into LEDGER_WRITE_FAILED, naming the table', async () => {
      const { ledger, table } = newLedger();
      dynamodb.failNext(1);
      const failure = ledger.write({ signatures: [signature()], decisions: [], admitted: [] });
      await expect(failure).toThrowWithCode(LedgerError, 'LEDGER_WRITE_FAILED');
      await expect(failure).rejects.toMatchObject({ store: table });
    });

    it('turns a failed read into LEDGER_UNREADABLE', async () => {
      const { ledger } = newLedger();
      dynamodb.failNext(1, 'AccessDeniedException');
      await expect(ledger.findings()).toThrowWithCode(LedgerError, 'LEDGER_UNREADABLE');
    });

    it('turns a missing table into LEDGER_UNREADABLE', async () => {
      const ledger = new DynamoLedger({ client, table: 'no-such-table', retentionDays: 1, windowDays: 1 });
      await expect(ledger.signatures({ digest: digestOf(1) })).toThrowWithCode(
        LedgerError,
        'LEDGER_UNREADABLE',
      );
    });
  });

  describe('the items it writes', () => {
    it('expire with the retention (decisions, resolved findings) and the window (admitted images)', async () => {
      const { ledger, table } = newLedger();
      await ledger.write({ signatures: [signature()], decisions: [decision()], admitted: [admitted()] });
      await ledger.saveFindings([finding({ id: 'open' }), finding({ id: 'resolved', resolvedAt: T0 })]);
      const ttl = LEDGER_TABLE_SCHEMA.timeToLiveAttribute;
      const expiry = Object.fromEntries(
        dynamodb
          .items(table)
          .map((item) => [
            `${(item['type'] as { S: string }).S}:${(item['sk'] as { S: string }).S.slice(0, 8)}`,
            (item[ttl] as { N: string } | undefined)?.N,
          ]),
      );
      const seconds = (ms: number): string => String(Math.ceil(ms / 1000));
      expect(expiry).toEqual({
        'signature:SIG#sig-': undefined,
        [`decision:DEC#${new Date(T0).toISOString().slice(0, 4)}`]: seconds(T0 + RETENTION_DAYS * 86_400_000),
        [`admitted:${'registry'}`]: seconds(T0 + WINDOW_DAYS * 86_400_000),
        'finding:open': undefined,
        'finding:resolved': seconds(T0 + RETENTION_DAYS * 86_400_000),
      });
    });
  });

  describe('read by `signet ledger --table` and `signet findings --table`', () => {
    it('answers who signed a digest, and lists the open findings', async () => {
      const { ledger, table } = newLedger({ clock: Date.now });
      const now = Date.now();
      await ledger.write({
        signatures: [
          signature({ signedAt: now - 1000 }),
          signature({ id: 'other', digest: digestOf(2), signedAt: now }),
        ],
        decisions: [decision({ decidedAt: now - 500 })],
        admitted: [],
      });
      await ledger.saveFindings([finding({ lastFoundAt: now }), finding({ id: 'done', resolvedAt: now })]);

      const read = await signet(
        'ledger',
        '--table',
        table,
        '--endpoint',
        dynamodb.url,
        '--digest',
        digestOf(1),
        '--json',
      );
      expect(read.err).toBe('');
      expect(read.code).toBe(0);
      const { signatures, decisions } = JSON.parse(read.out) as {
        signatures: { rule: string; witness: string; signedAt: number }[];
        decisions: { id: string }[];
      };
      expect(signatures).toEqual([
        expect.objectContaining({ rule: 'team-a', witness: 'release', signedAt: now - 1000 }),
      ]);
      expect(decisions.map((d) => d.id)).toEqual(['dec-1']);

      const found = await signet('findings', '--table', table, '--endpoint', dynamodb.url, '--json');
      expect(found.code).toBe(0);
      expect((JSON.parse(found.out) as { id: string }[]).map((f) => f.id)).toEqual(['finding-1']);
    });
  });
});
