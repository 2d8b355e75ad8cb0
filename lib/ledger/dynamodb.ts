/**
 * The ledger on AWS: one DynamoDB table (on demand, TTL, point-in-time recovery; created by the
 * `SigningService` construct), written by the sign function (signatures), the verify function
 * (decisions, admitted images) and the re-verification function (findings). Item layout: see
 * `dynamodb-schema.ts`. It never loads better-sqlite3: the functions import this file.
 *
 * Queries pick the most selective key (digest, then repository, then witness, then the day
 * buckets of the time range) and filter the rest with the same functions as the SQLite store, so
 * both answer the same question alike. A time-only query without `since` reads the last
 * `defaultDays` days.
 */
import {
  BatchWriteItemCommand,
  PutItemCommand,
  QueryCommand,
  type AttributeValue,
  type DynamoDBClient,
  type QueryCommandInput,
  type WriteRequest,
} from '@aws-sdk/client-dynamodb';
import { createHash } from 'node:crypto';
import { describeError } from '../core/errors';
import { ADMITTED_SHARDS, LEDGER_TABLE_SCHEMA, type LedgerIndexName } from './dynamodb-schema';
import { LedgerError } from './errors';
import { matchesDecision, matchesSignature, newestFirst as newest } from './records';
import {
  daysMs,
  placementKey,
  type AdmittedImage,
  type DecisionRecord,
  type Finding,
  type Ledger,
  type LedgerBatch,
  type LedgerQuery,
  type SignatureRecord,
} from './types';

type Item = Record<string, AttributeValue>;

const { partitionKey: PK, sortKey: SK, timeToLiveAttribute: TTL, indexes } = LEDGER_TABLE_SCHEMA;
const BATCH_SIZE = 25;
const UNPROCESSED_ATTEMPTS = 6;
const DAY_MS = 86_400_000;

/** Where and how the DynamoDB ledger keeps records. */
export interface DynamoLedgerOptions {
  readonly client: Pick<DynamoDBClient, 'send'>;
  readonly table: string;
  /** Decisions and resolved findings expire this many days after they happened. */
  readonly retentionDays: number;
  /** Admitted images expire this many days after their last admission (`reverify.windowDays`). */
  readonly windowDays: number;
  /** How far back a time-only query without `since` reads; default 30 days. */
  readonly defaultDays?: number;
  readonly clock?: () => number;
  /** Waits between retries of unprocessed batch items (tests make it instant). */
  readonly sleep?: (ms: number) => Promise<void>;
}

const s = (value: string): AttributeValue => ({ S: value });
const n = (value: number): AttributeValue => ({ N: String(value) });
const iso = (ms: number): string => new Date(ms).toISOString();
const day = (ms: number): string => iso(ms).slice(0, 10);
const epochSeconds = (ms: number): number => Math.ceil(ms / 1000);

/** The ledger in one DynamoDB table. */
export class DynamoLedger implements Ledger {
  private readonly retentionMs: number;
  private readonly windowMs: number;
  private readonly defaultMs: number;
  private readonly clock: () => number;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(private readonly options: DynamoLedgerOptions) {
    this.retentionMs = daysMs(options.retentionDays);
    this.windowMs = Math.max(daysMs(options.windowDays), DAY_MS);
    this.defaultMs = daysMs(options.defaultDays ?? 30);
    this.clock = options.clock ?? Date.now;
    this.sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
  }

  get table(): string {
    return this.options.table;
  }

  async write(batch: LedgerBatch): Promise<void> {
    await Promise.all([
      // A signature keeps its first record: a redelivered push must not move its time.
      ...batch.signatures.map((r) =>
        this.putIf(this.signatureItem(r), 'attribute_not_exists(#pk)', { '#pk': PK }, {}),
      ),
      // The latest admission wins, as in SQLite: one delivered late does not move it back.
      ...dedupe(batch.admitted).map((a) =>
        this.putIf(
          this.admittedItem(a),
          'attribute_not_exists(#pk) OR #at <= :at',
          { '#pk': PK, '#at': 'at' },
          { ':at': n(a.lastAdmittedAt) },
        ),
      ),
      this.batchPut(batch.decisions.flatMap((d) => this.decisionItems(d))),
    ]);
  }

  async signatures(query: LedgerQuery): Promise<SignatureRecord[]> {
    const found: SignatureRecord[] = [];
    const keep = (item: Item): boolean => {
      const record = decode<SignatureRecord>(item);
      if (record === undefined || !matchesSignature(record, query)) return false;
      found.push(record);
      return query.limit !== undefined && found.length >= query.limit;
    };
    if (query.digest !== undefined) {
      // One digest has a handful of signatures, in id order: read them all, then take the newest.
      await this.each({ key: [`DIGEST#${query.digest}`, { prefix: 'SIG#' }] }, (item) => {
        const record = decode<SignatureRecord>(item);
        if (record !== undefined && matchesSignature(record, query)) found.push(record);
        return false;
      });
      return newest(found, (r) => r.signedAt, query.limit);
    }
    if (query.repository !== undefined) {
      await this.each(
        { index: 'byRepository', key: [`REPO#${query.repository}`, this.range(query)], type: 'signature' },
        keep,
      );
    } else if (query.witness !== undefined) {
      await this.each(
        { index: 'byWitness', key: [`WITNESS#${query.witness}`, this.range(query)], type: 'signature' },
        keep,
      );
    } else {
      await this.days(query, 'SIG', keep);
    }
    return found;
  }

  async decisions(query: LedgerQuery): Promise<DecisionRecord[]> {
    const found = new Map<string, DecisionRecord>();
    const keep = (item: Item): boolean => {
      const record = decode<DecisionRecord>(item);
      if (record === undefined || found.has(record.id) || !matchesDecision(record, query)) return false;
      found.set(record.id, record);
      return query.limit !== undefined && found.size >= query.limit;
    };
    if (query.witness !== undefined) return [];
    if (query.digest !== undefined) {
      const { since, until } = query;
      const range: KeyRange =
        since === undefined && until === undefined
          ? { prefix: 'DEC#' }
          : {
              from: since === undefined ? 'DEC#' : `DEC#${iso(since)}`,
              to: until === undefined ? 'DEC$' : `DEC#${iso(until)}`,
            };
      await this.each({ key: [`DIGEST#${query.digest}`, range], forward: false }, keep);
    } else if (query.repository !== undefined) {
      await this.each(
        { index: 'byRepository', key: [`REPO#${query.repository}`, this.range(query)], type: 'decision' },
        keep,
      );
    } else {
      await this.days(query, 'DEC', keep);
    }
    return newest([...found.values()], (r) => r.decidedAt, query.limit);
  }

  async admitted(since: number): Promise<AdmittedImage[]> {
    const found: AdmittedImage[] = [];
    for (let shard = 0; shard < ADMITTED_SHARDS; shard++) {
      await this.each({ key: [`ADMITTED#${shard}`, undefined], since }, (item) => {
        const record = decode<AdmittedImage>(item);
        if (record !== undefined && record.lastAdmittedAt >= since) found.push(record);
        return false;
      });
    }
    return newest(found, (a) => a.lastAdmittedAt, undefined);
  }

  async findings(options: { readonly includeResolved?: boolean } = {}): Promise<Finding[]> {
    const found: Finding[] = [];
    await this.each({ key: ['FINDING', undefined] }, (item) => {
      const record = decode<Finding>(item);
      if (record !== undefined && (options.includeResolved === true || record.resolvedAt === undefined))
        found.push(record);
      return false;
    });
    return newest(found, (f) => f.lastFoundAt, undefined);
  }

  saveFindings(findings: readonly Finding[]): Promise<void> {
    return this.batchPut(
      findings.map((f) => ({
        [PK]: s('FINDING'),
        [SK]: s(f.id),
        type: s('finding'),
        at: n(f.lastFoundAt),
        record: s(JSON.stringify(f)),
        ...(f.resolvedAt !== undefined ? { [TTL]: n(epochSeconds(f.resolvedAt + this.retentionMs)) } : {}),
      })),
    );
  }

  /** DynamoDB's TTL deletes old items itself. */
  prune(_now?: number): Promise<void> {
    return Promise.resolve();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  private signatureItem(r: SignatureRecord): Item {
    const t = iso(r.signedAt);
    return {
      [PK]: s(`DIGEST#${r.digest}`),
      [SK]: s(`SIG#${r.id}`),
      [indexes.byRepository.partitionKey]: s(`REPO#${r.registry}/${r.repository}`),
      [indexes.byRepository.sortKey]: s(`${t}#SIG#${r.id}`),
      [indexes.byWitness.partitionKey]: s(`WITNESS#${r.witness}`),
      [indexes.byWitness.sortKey]: s(`${t}#${r.id}`),
      [indexes.byDay.partitionKey]: s(`DAY#SIG#${day(r.signedAt)}`),
      [indexes.byDay.sortKey]: s(`${t}#${r.id}`),
      type: s('signature'),
      at: n(r.signedAt),
      record: s(JSON.stringify(r)),
    };
  }

  /** One item per image (so each digest and repository finds it), each holding the whole decision. */
  private decisionItems(r: DecisionRecord): Item[] {
    const t = iso(r.decidedAt);
    const record = s(JSON.stringify(r));
    const expiresAt = n(epochSeconds(r.decidedAt + this.retentionMs));
    const images = r.images.length > 0 ? r.images : [undefined];
    return images.map((image, i) => ({
      [PK]: s(image?.digest !== undefined ? `DIGEST#${image.digest}` : `DECISION#${r.id}`),
      [SK]: s(`DEC#${t}#${r.id}#${i}`),
      ...(image?.repository !== undefined
        ? {
            [indexes.byRepository.partitionKey]: s(`REPO#${image.repository}`),
            [indexes.byRepository.sortKey]: s(`${t}#DEC#${r.id}#${i}`),
          }
        : {}),
      [indexes.byDay.partitionKey]: s(`DAY#DEC#${day(r.decidedAt)}`),
      [indexes.byDay.sortKey]: s(`${t}#${r.id}#${i}`),
      type: s('decision'),
      at: n(r.decidedAt),
      record,
      [TTL]: expiresAt,
    }));
  }

  private admittedItem(a: AdmittedImage): Item {
    const key = placementKey(a);
    return {
      [PK]: s(`ADMITTED#${shardOf(key)}`),
      [SK]: s(key),
      type: s('admitted'),
      at: n(a.lastAdmittedAt),
      record: s(JSON.stringify(a)),
      [TTL]: n(epochSeconds(a.lastAdmittedAt + this.windowMs)),
    };
  }

  /**
   * The sort-key range of `query`'s time range on a `<iso time>#...` index. DynamoDB refuses an
   * empty string in a key condition, so an open end is left out rather than written as ''.
   */
  private range(query: LedgerQuery): KeyRange | undefined {
    if (query.since === undefined && query.until === undefined) return undefined;
    return {
      ...(query.since !== undefined ? { from: iso(query.since) } : {}),
      ...(query.until !== undefined ? { to: iso(query.until) } : {}),
    };
  }

  /** A time-only query: the day buckets of the range, newest first. */
  private async days(query: LedgerQuery, kind: 'SIG' | 'DEC', keep: (item: Item) => boolean): Promise<void> {
    const until = query.until ?? this.clock() + 1;
    const since = query.since ?? until - this.defaultMs;
    for (let at = until - 1; day(at) >= day(since); at -= DAY_MS) {
      const done = await this.each(
        { index: 'byDay', key: [`DAY#${kind}#${day(at)}`, this.range({ since, until })], forward: false },
        keep,
      );
      if (done) return;
    }
  }

  /**
   * Runs a query page by page, descending unless `forward`, handing each item to `visit` until
   * it answers true (enough); resolves to whether it did.
   */
  private async each(
    q: {
      readonly index?: LedgerIndexName;
      readonly key: readonly [string, KeyRange | undefined];
      readonly type?: string;
      readonly since?: number;
      readonly forward?: boolean;
    },
    visit: (item: Item) => boolean,
  ): Promise<boolean> {
    const keys = q.index === undefined ? { partitionKey: PK, sortKey: SK } : indexes[q.index];
    const names: Record<string, string> = { '#pk': keys.partitionKey };
    const values: Item = { ':pk': s(q.key[0]) };
    let condition = '#pk = :pk';
    const range = q.key[1];
    if (range !== undefined) {
      names['#sk'] = keys.sortKey;
      if ('prefix' in range) {
        condition += ' AND begins_with(#sk, :prefix)';
        values[':prefix'] = s(range.prefix);
      } else if (range.from !== undefined && range.to !== undefined) {
        // DynamoDB refuses a BETWEEN whose bounds are the wrong way round: nothing is in it.
        if (range.from > range.to) return false;
        condition += ' AND #sk BETWEEN :from AND :to';
        values[':from'] = s(range.from);
        values[':to'] = s(range.to);
      } else if (range.from !== undefined) {
        condition += ' AND #sk >= :from';
        values[':from'] = s(range.from);
      } else if (range.to !== undefined) {
        condition += ' AND #sk <= :to';
        values[':to'] = s(range.to);
      }
    }
    const filters: string[] = [];
    if (q.type !== undefined) {
      names['#type'] = 'type';
      values[':type'] = s(q.type);
      filters.push('#type = :type');
    }
    if (q.since !== undefined) {
      names['#at'] = 'at';
      values[':since'] = n(q.since);
      filters.push('#at >= :since');
    }
    let start: Item | undefined;
    do {
      const input: QueryCommandInput = {
        TableName: this.options.table,
        ...(q.index !== undefined ? { IndexName: q.index } : {}),
        KeyConditionExpression: condition,
        ...(filters.length > 0 ? { FilterExpression: filters.join(' AND ') } : {}),
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: values,
        ScanIndexForward: q.forward ?? false,
        ...(start !== undefined ? { ExclusiveStartKey: start } : {}),
      };
      const page = await this.send('Query', 'LEDGER_UNREADABLE', () =>
        this.options.client.send(new QueryCommand(input)),
      );
      for (const item of page.Items ?? []) if (visit(item)) return true;
      start = page.LastEvaluatedKey;
    } while (start !== undefined);
    return false;
  }

  /** Puts `item` when `condition` holds for the item it would replace; otherwise leaves it. */
  private async putIf(
    item: Item,
    condition: string,
    names: Record<string, string>,
    values: Item,
  ): Promise<void> {
    try {
      await this.options.client.send(
        new PutItemCommand({
          TableName: this.options.table,
          Item: item,
          ConditionExpression: condition,
          ExpressionAttributeNames: names,
          ...(Object.keys(values).length > 0 ? { ExpressionAttributeValues: values } : {}),
        }),
      );
    } catch (error) {
      if ((error as { name?: string } | null)?.name === 'ConditionalCheckFailedException') return;
      throw this.failure('PutItem', 'LEDGER_WRITE_FAILED', error);
    }
  }

  /** BatchWriteItem in chunks of 25, retrying what DynamoDB leaves unprocessed (with backoff). */
  private async batchPut(items: readonly Item[]): Promise<void> {
    for (let i = 0; i < items.length; i += BATCH_SIZE) {
      let requests: WriteRequest[] = items.slice(i, i + BATCH_SIZE).map((Item) => ({ PutRequest: { Item } }));
      for (let attempt = 0; requests.length > 0; attempt++) {
        if (attempt >= UNPROCESSED_ATTEMPTS) {
          throw new LedgerError(
            'LEDGER_WRITE_FAILED',
            this.options.table,
            `BatchWriteItem: ${requests.length} items still unprocessed after ${UNPROCESSED_ATTEMPTS} attempts (throttled)`,
          );
        }
        if (attempt > 0) await this.sleep(Math.min(2000, 50 * 2 ** attempt));
        const out = await this.send('BatchWriteItem', 'LEDGER_WRITE_FAILED', () =>
          this.options.client.send(
            new BatchWriteItemCommand({ RequestItems: { [this.options.table]: requests } }),
          ),
        );
        requests = out.UnprocessedItems?.[this.options.table] ?? [];
      }
    }
  }

  private async send<T>(
    operation: string,
    code: 'LEDGER_WRITE_FAILED' | 'LEDGER_UNREADABLE',
    call: () => Promise<T>,
  ): Promise<T> {
    try {
      return await call();
    } catch (error) {
      throw this.failure(operation, code, error);
    }
  }

  private failure(
    operation: string,
    code: 'LEDGER_WRITE_FAILED' | 'LEDGER_UNREADABLE',
    error: unknown,
  ): LedgerError {
    const name = (error as { name?: string } | null)?.name;
    return new LedgerError(
      code,
      this.options.table,
      `DynamoDB ${operation}: ${name !== undefined ? `${name}: ` : ''}${describeError(error)}`,
      { cause: error },
    );
  }
}

/** A sort-key condition: a prefix, or an inclusive range (an end left out is open). */
type KeyRange = { readonly prefix: string } | { readonly from?: string; readonly to?: string };

function decode<T>(item: Item): T | undefined {
  const text = item['record']?.S;
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as T;
  } catch {
    return undefined;
  }
}

const shardOf = (key: string): number =>
  createHash('sha256').update(key).digest().readUInt32BE(0) % ADMITTED_SHARDS;

/** One item per placement (BatchWriteItem refuses two puts of one key): the latest admission. */
function dedupe(admitted: readonly AdmittedImage[]): AdmittedImage[] {
  const latest = new Map<string, AdmittedImage>();
  for (const a of admitted) {
    const key = placementKey(a);
    const seen = latest.get(key);
    if (seen === undefined || a.lastAdmittedAt >= seen.lastAdmittedAt) latest.set(key, a);
  }
  return [...latest.values()];
}
