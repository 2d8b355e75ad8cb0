/**
 * A local Amazon DynamoDB for integration tests, behind the real SDK client: the JSON 1.0
 * protocol (`X-Amz-Target: DynamoDB_20120810.<Operation>`) on top of `aws-endpoint.ts`, with
 * the operations Signet's ledger uses — PutItem (with a ConditionExpression), GetItem,
 * BatchWriteItem, Query (key conditions, FilterExpression, global secondary indexes, Limit,
 * paging with LastEvaluatedKey, ScanIndexForward) — checked the way the API reference describes:
 * unknown tables, missing or mistyped key attributes, duplicate keys in one batch, more than 25
 * requests, expression attribute names or values left unused, a key condition without the
 * partition key, items over 400 KB. Global secondary indexes are sparse, as in DynamoDB: an item
 * without an index's key attributes is not in that index.
 *
 *   const dynamodb = await startDynamoDbEndpoint();
 *   dynamodb.createTable('ledger');                 // the ledger's key schema by default
 *   new DynamoDBClient(localClientConfig(dynamodb.url))
 *   dynamodb.unprocessNext(3)                       // BatchWriteItem leaves 3 items unprocessed
 *   dynamodb.expire('ledger', Date.now())           // what DynamoDB's TTL deletes by then
 *
 * Key conditions are checked as DynamoDB checks them too: no empty string compared with a key
 * attribute, a BETWEEN whose lower bound is not above its upper bound.
 */
import { AwsFault, startAwsJsonEndpoint, type AwsCall } from './aws-endpoint';
import { LEDGER_TABLE_SCHEMA } from '../../lib/ledger/dynamodb-schema';

/** An attribute value as the wire carries it (the types the ledger writes, and lists/maps passed through). */
export type AttributeValue =
  { S: string } | { N: string } | { BOOL: boolean } | { NULL: true } | Record<string, unknown>;
export type Item = Record<string, AttributeValue>;

/** A table's keys: the base table's and each global secondary index's (all strings). */
export interface TableSchema {
  readonly partitionKey: string;
  readonly sortKey?: string;
  readonly indexes?: Readonly<Record<string, { readonly partitionKey: string; readonly sortKey?: string }>>;
}

export interface DynamoDbEndpoint {
  readonly url: string;
  readonly calls: AwsCall[];
  createTable(name: string, schema?: TableSchema): void;
  /** Every item of a table, in key order. */
  items(table: string): Item[];
  /**
   * Deletes the items whose time-to-live attribute (epoch seconds; the ledger's by default) is
   * before `nowMs`, as DynamoDB's TTL does some time after it passes. Resolves to how many.
   */
  expire(table: string, nowMs: number, attribute?: string): number;
  /** The next `n` PutRequests of BatchWriteItem calls are returned as UnprocessedItems. */
  unprocessNext(n: number): void;
  /** The next `n` calls fail with `type` (default ProvisionedThroughputExceededException, 400). */
  failNext(n: number, type?: string, status?: number): void;
  /** Most items one Query page returns before LastEvaluatedKey (DynamoDB's 1 MB, in items); default 100. */
  pageItems: number;
  close(): Promise<void>;
}

const MAX_ITEM_BYTES = 400 * 1024;
const MAX_BATCH = 25;

interface Table {
  readonly schema: TableSchema;
  /** By `pk\0sk`. */
  readonly items: Map<string, Item>;
}

const validation = (message: string): AwsFault => new AwsFault('ValidationException', message);

export async function startDynamoDbEndpoint(): Promise<DynamoDbEndpoint> {
  const tables = new Map<string, Table>();
  let unprocessed = 0;
  let failing: { n: number; type: string; status: number } = { n: 0, type: '', status: 400 };

  const tableOf = (name: unknown): Table => {
    const table = typeof name === 'string' ? tables.get(name) : undefined;
    if (table === undefined) throw new AwsFault('ResourceNotFoundException', 'Requested resource not found');
    return table;
  };
  const maybeFail = (): void => {
    if (failing.n <= 0) return;
    failing = { ...failing, n: failing.n - 1 };
    throw new AwsFault(failing.type, 'the test endpoint failed this call', failing.status);
  };

  const state = { pageItems: 100 };
  const endpoint = await startAwsJsonEndpoint({
    targetPrefix: 'DynamoDB_20120810',
    protocol: '1.0',
    errorTypePrefix: 'com.amazonaws.dynamodb.v20120810#',
    handlers: {
      PutItem: (body: { TableName?: string; Item?: Item; ConditionExpression?: string } & Expressions) => {
        maybeFail();
        const table = tableOf(body.TableName);
        const item = checkItem(table.schema, body.Item);
        const key = keyOf(table.schema, item);
        checkAllUsed(body, body.ConditionExpression);
        if (body.ConditionExpression !== undefined) {
          const existing = table.items.get(key) ?? {};
          if (!evaluate(body.ConditionExpression, existing, body))
            throw new AwsFault('ConditionalCheckFailedException', 'The conditional request failed');
        }
        table.items.set(key, item);
        return {};
      },
      GetItem: (body: { TableName?: string; Key?: Item }) => {
        maybeFail();
        const table = tableOf(body.TableName);
        const key = checkItem(table.schema, body.Key, true);
        const item = table.items.get(keyOf(table.schema, key));
        return item === undefined ? {} : { Item: item };
      },
      BatchWriteItem: (body: { RequestItems?: Record<string, { PutRequest?: { Item?: Item } }[]> }) => {
        maybeFail();
        const requests = Object.entries(body.RequestItems ?? {});
        const count = requests.reduce((sum, [, list]) => sum + list.length, 0);
        if (count === 0 || count > MAX_BATCH) {
          throw validation(
            `1 validation error detected: Value at 'requestItems' failed to satisfy constraint: Map value must satisfy constraint: [Member must have length less than or equal to ${MAX_BATCH}, Member must have length greater than or equal to 1]`,
          );
        }
        const UnprocessedItems: Record<string, unknown[]> = {};
        const writes: [Table, string, Item][] = [];
        for (const [name, list] of requests) {
          const table = tableOf(name);
          const seen = new Set<string>();
          for (const request of list) {
            if (request.PutRequest === undefined) throw validation('only PutRequest is supported here');
            const item = checkItem(table.schema, request.PutRequest.Item);
            const key = keyOf(table.schema, item);
            if (seen.has(key)) throw validation('Provided list of item keys contains duplicates');
            seen.add(key);
            if (unprocessed > 0) {
              unprocessed--;
              (UnprocessedItems[name] ??= []).push(request);
            } else writes.push([table, key, item]);
          }
        }
        for (const [table, key, item] of writes) table.items.set(key, item);
        return { UnprocessedItems };
      },
      Query: (body: QueryInput) => {
        maybeFail();
        const table = tableOf(body.TableName);
        return query(table, body, state.pageItems);
      },
    },
  });

  return {
    url: endpoint.url,
    calls: endpoint.calls,
    createTable(name, schema = LEDGER_TABLE_SCHEMA) {
      tables.set(name, { schema, items: new Map() });
    },
    items(name) {
      return [...tableOf(name).items.entries()].sort(([a], [b]) => compare(a, b)).map(([, item]) => item);
    },
    expire(name, nowMs, attribute = LEDGER_TABLE_SCHEMA.timeToLiveAttribute) {
      const table = tableOf(name);
      let deleted = 0;
      for (const [key, item] of table.items) {
        const ttl = item[attribute] as { N?: string } | undefined;
        if (ttl?.N !== undefined && Number(ttl.N) * 1000 < nowMs) {
          table.items.delete(key);
          deleted++;
        }
      }
      return deleted;
    },
    unprocessNext(n) {
      unprocessed = n;
    },
    failNext(n, type = 'ProvisionedThroughputExceededException', status = 400) {
      failing = { n, type, status };
    },
    get pageItems() {
      return state.pageItems;
    },
    set pageItems(n: number) {
      state.pageItems = n;
    },
    close: endpoint.close,
  };
}

interface Expressions {
  readonly ExpressionAttributeNames?: Record<string, string>;
  readonly ExpressionAttributeValues?: Item;
}

interface QueryInput extends Expressions {
  readonly TableName?: string;
  readonly IndexName?: string;
  readonly KeyConditionExpression?: string;
  readonly FilterExpression?: string;
  readonly ScanIndexForward?: boolean;
  readonly Limit?: number;
  readonly ExclusiveStartKey?: Item;
}

function query(table: Table, body: QueryInput, pageItems: number): unknown {
  const keys =
    body.IndexName === undefined
      ? { partitionKey: table.schema.partitionKey, sortKey: table.schema.sortKey }
      : table.schema.indexes?.[body.IndexName];
  if (keys === undefined)
    throw validation(`The table does not have the specified index: ${body.IndexName ?? ''}`);
  if (body.KeyConditionExpression === undefined)
    throw validation(
      'Either the KeyConditions or KeyConditionExpression parameter must be specified in the request.',
    );
  checkAllUsed(body, body.KeyConditionExpression, body.FilterExpression);
  checkKeyValues(body, body.KeyConditionExpression);
  const keyNames = referencedNames(body.KeyConditionExpression, body);
  if (
    !keyNames.has(keys.partitionKey) ||
    [...keyNames].some((n) => n !== keys.partitionKey && n !== keys.sortKey)
  )
    throw validation('Query condition missed key schema element: ' + keys.partitionKey);
  // The index holds the items that have its key attributes (sparse), in key order.
  const candidates = [...table.items.values()].filter(
    (item) =>
      item[keys.partitionKey] !== undefined &&
      (keys.sortKey === undefined || item[keys.sortKey] !== undefined),
  );
  const sortValue = (item: Item): string =>
    keys.sortKey === undefined ? '' : `${textOf(item[keys.sortKey])}\0${keyOf(table.schema, item)}`;
  let matched = candidates
    .filter((item) => evaluate(body.KeyConditionExpression as string, item, body))
    .sort((a, b) => compare(sortValue(a), sortValue(b)));
  if (body.ScanIndexForward === false) matched = matched.reverse();
  if (body.ExclusiveStartKey !== undefined) {
    const start = keyOf(table.schema, body.ExclusiveStartKey);
    const at = matched.findIndex((item) => keyOf(table.schema, item) === start);
    matched = at < 0 ? [] : matched.slice(at + 1);
  }
  const limit = Math.min(body.Limit ?? Number.MAX_SAFE_INTEGER, pageItems);
  const page = matched.slice(0, limit);
  const filtered =
    body.FilterExpression === undefined
      ? page
      : page.filter((item) => evaluate(body.FilterExpression as string, item, body));
  const last = matched.length > page.length ? page[page.length - 1] : undefined;
  const lastKey = (item: Item): Item => {
    const key: Item = {};
    for (const name of [table.schema.partitionKey, table.schema.sortKey, keys.partitionKey, keys.sortKey]) {
      if (name !== undefined && item[name] !== undefined) key[name] = item[name] as AttributeValue;
    }
    return key;
  };
  return {
    Items: filtered,
    Count: filtered.length,
    ScannedCount: page.length,
    ...(last !== undefined ? { LastEvaluatedKey: lastKey(last) } : {}),
  };
}

/**
 * DynamoDB refuses a key condition that compares a key with an empty string, and a BETWEEN whose
 * bounds are the wrong way round.
 */
function checkKeyValues(body: Expressions, condition: string): void {
  const tokens = tokenize(condition);
  for (const token of tokens) {
    if (token.kind !== 'value') continue;
    const value = body.ExpressionAttributeValues?.[token.text] as { S?: unknown } | undefined;
    if (value?.S === '')
      throw validation(
        `One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain an empty string value. Key: ${token.text}`,
      );
  }
  tokens.forEach((token, i) => {
    if (token.kind !== 'word' || token.text.toUpperCase() !== 'BETWEEN') return;
    const low = tokens[i + 1];
    const high = tokens[i + 3];
    const c = order(
      low === undefined ? undefined : body.ExpressionAttributeValues?.[low.text],
      high === undefined ? undefined : body.ExpressionAttributeValues?.[high.text],
    );
    if (c !== null && c > 0)
      throw validation(
        'Invalid KeyConditionExpression: The BETWEEN operator requires upper bound to be greater than or equal to lower bound',
      );
  });
}

/** The item with its key attributes checked (strings, non-empty) and its size bounded. */
function checkItem(schema: TableSchema, value: Item | undefined, keyOnly = false): Item {
  if (value === undefined || typeof value !== 'object')
    throw validation('One or more parameter values were invalid: Item is required');
  for (const name of [schema.partitionKey, schema.sortKey]) {
    if (name === undefined) continue;
    const attribute = value[name] as { S?: unknown } | undefined;
    if (attribute === undefined)
      throw validation(`One or more parameter values were invalid: Missing the key ${name} in the item`);
    if (typeof attribute.S !== 'string')
      throw validation(
        `One or more parameter values were invalid: Type mismatch for key ${name} expected: S`,
      );
    if (attribute.S === '')
      throw validation(
        `One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain an empty string value. Key: ${name}`,
      );
  }
  for (const keys of Object.values(schema.indexes ?? {})) {
    for (const name of [keys.partitionKey, keys.sortKey]) {
      const attribute = name === undefined ? undefined : (value[name] as { S?: unknown } | undefined);
      if (attribute !== undefined && (typeof attribute.S !== 'string' || attribute.S === ''))
        throw validation(
          `One or more parameter values were invalid: Type mismatch for Index Key ${name ?? ''} Expected: S`,
        );
    }
  }
  if (!keyOnly && Buffer.byteLength(JSON.stringify(value)) > MAX_ITEM_BYTES)
    throw validation('Item size has exceeded the maximum allowed size');
  return value;
}

const keyOf = (schema: TableSchema, item: Item): string =>
  `${textOf(item[schema.partitionKey])}\0${schema.sortKey === undefined ? '' : textOf(item[schema.sortKey])}`;

const textOf = (value: AttributeValue | undefined): string =>
  value !== undefined && 'S' in value && typeof value.S === 'string' ? value.S : '';

/** DynamoDB orders strings by their UTF-8 bytes. */
const compare = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b));

/** DynamoDB refuses names and values the expressions do not use. */
function checkAllUsed(body: Expressions, ...expressions: (string | undefined)[]): void {
  const used = new Set(
    expressions.flatMap((text) =>
      text === undefined
        ? []
        : tokenize(text)
            .filter((t) => t.kind === 'name' || t.kind === 'value')
            .map((t) => t.text),
    ),
  );
  for (const name of Object.keys(body.ExpressionAttributeNames ?? {})) {
    if (!used.has(name))
      throw validation(`Value provided in ExpressionAttributeNames unused in expressions: keys: {${name}}`);
  }
  for (const name of Object.keys(body.ExpressionAttributeValues ?? {})) {
    if (!used.has(name))
      throw validation(`Value provided in ExpressionAttributeValues unused in expressions: keys: {${name}}`);
  }
}

// A small evaluator for the expression grammar DynamoDB documents: comparisons, BETWEEN,
// begins_with, attribute_exists / attribute_not_exists, AND / OR / NOT and parentheses.

type Token = { kind: 'name' | 'value' | 'word' | 'op' | 'punct'; text: string };

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  const pattern =
    /\s*(?:(#[A-Za-z0-9_]+)|(:[A-Za-z0-9_]+)|(<>|<=|>=|=|<|>)|([(),])|([A-Za-z_][A-Za-z0-9_.]*))/y;
  let at = 0;
  while (at < text.length) {
    if (/^\s*$/.test(text.slice(at))) break;
    pattern.lastIndex = at;
    const m = pattern.exec(text);
    if (m === null) throw validation(`Invalid expression: Syntax error; token: "${text.slice(at, at + 10)}"`);
    at = pattern.lastIndex;
    if (m[1] !== undefined) tokens.push({ kind: 'name', text: m[1] });
    else if (m[2] !== undefined) tokens.push({ kind: 'value', text: m[2] });
    else if (m[3] !== undefined) tokens.push({ kind: 'op', text: m[3] });
    else if (m[4] !== undefined) tokens.push({ kind: 'punct', text: m[4] });
    else tokens.push({ kind: 'word', text: m[5] as string });
  }
  return tokens;
}

/** Attribute names an expression refers to (placeholders resolved). */
function referencedNames(text: string, body: Expressions): Set<string> {
  const names = new Set<string>();
  for (const token of tokenize(text)) {
    if (token.kind === 'name') {
      const name = body.ExpressionAttributeNames?.[token.text];
      if (name === undefined)
        throw validation(
          `Value provided in ExpressionAttributeNames unused in expressions: An expression attribute name used in the document path is not defined; attribute name: ${token.text}`,
        );
      names.add(name);
    }
  }
  return names;
}

function evaluate(text: string, item: Item, body: Expressions): boolean {
  const tokens = tokenize(text);
  let i = 0;
  const peek = (): Token | undefined => tokens[i];
  const word = (w: string): boolean => peek()?.kind === 'word' && peek()?.text.toUpperCase() === w;
  const expect = (text: string): void => {
    if (peek()?.text !== text) throw validation(`Invalid expression: Syntax error; expected "${text}"`);
    i++;
  };
  const operand = (): AttributeValue | undefined => {
    const token = tokens[i++];
    if (token === undefined) throw validation('Invalid expression: unexpected end');
    if (token.kind === 'name') {
      const name = body.ExpressionAttributeNames?.[token.text];
      if (name === undefined)
        throw validation(
          `An expression attribute name used in the document path is not defined; attribute name: ${token.text}`,
        );
      return item[name];
    }
    if (token.kind === 'value') {
      const value = body.ExpressionAttributeValues?.[token.text];
      if (value === undefined)
        throw validation(
          `An expression attribute value used in expression is not defined; attribute value: ${token.text}`,
        );
      return value;
    }
    if (token.kind === 'word') return item[token.text];
    throw validation(`Invalid expression: Syntax error; token: "${token.text}"`);
  };
  const primary = (): boolean => {
    if (peek()?.text === '(') {
      i++;
      const value = or();
      expect(')');
      return value;
    }
    const token = peek();
    if (token?.kind === 'word' && tokens[i + 1]?.text === '(') {
      const fn = token.text;
      i += 2;
      const first = operand();
      let result: boolean;
      if (fn === 'attribute_exists') result = first !== undefined;
      else if (fn === 'attribute_not_exists') result = first === undefined;
      else if (fn === 'begins_with') {
        expect(',');
        const prefix = operand();
        result = textOf(first) !== '' && prefix !== undefined && textOf(first).startsWith(textOf(prefix));
      } else throw validation(`Invalid function name; function: ${fn}`);
      expect(')');
      return result;
    }
    const left = operand();
    if (word('BETWEEN')) {
      i++;
      const low = operand();
      if (!word('AND')) throw validation('Invalid expression: BETWEEN needs AND');
      i++;
      const high = operand();
      const lo = order(left, low);
      const hi = order(left, high);
      return lo !== null && hi !== null && lo >= 0 && hi <= 0;
    }
    const op = tokens[i++];
    if (op?.kind !== 'op') throw validation('Invalid expression: a comparison is expected');
    const right = operand();
    const c = order(left, right);
    if (c === null) return op.text === '<>';
    switch (op.text) {
      case '=':
        return c === 0;
      case '<>':
        return c !== 0;
      case '<':
        return c < 0;
      case '<=':
        return c <= 0;
      case '>':
        return c > 0;
      default:
        return c >= 0;
    }
  };
  const not = (): boolean => {
    if (word('NOT')) {
      i++;
      return !not();
    }
    return primary();
  };
  const and = (): boolean => {
    let value = not();
    while (word('AND')) {
      i++;
      value = not() && value;
    }
    return value;
  };
  const or = (): boolean => {
    let value = and();
    while (word('OR')) {
      i++;
      value = and() || value;
    }
    return value;
  };
  const result = or();
  if (i !== tokens.length)
    throw validation(`Invalid expression: Syntax error; token: "${tokens[i]?.text ?? ''}"`);
  return result;
}

/** Compares two values of one type (numbers numerically, strings by bytes); null when they cannot be. */
function order(a: AttributeValue | undefined, b: AttributeValue | undefined): number | null {
  if (a === undefined || b === undefined) return null;
  if ('N' in a && 'N' in b) return Math.sign(Number(a.N) - Number(b.N));
  if ('S' in a && 'S' in b && typeof a.S === 'string' && typeof b.S === 'string') return compare(a.S, b.S);
  return null;
}
