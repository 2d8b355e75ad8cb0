/**
 * `signet ledger` and `signet findings`: the ledger read locally (the service's journal file,
 * read-only, whether or not the service runs) or on AWS (`--table`, the DynamoDB table).
 */
import { loadConfigFile } from '../../lib/config/load';
import { InputError } from '../../lib/core/errors';
import { parseReference, repositoryName } from '../../lib/core/reference';
import type { DecisionRecord, Finding, Ledger, LedgerQuery, SignatureRecord } from '../../lib/ledger';
import { SqliteLedger } from '../../lib/ledger/sqlite';
import { printJson, table } from '../output';
import { EXIT } from '../spec';
import type { CommandContext } from './context';

const DEFAULT_LIMIT = 50;
const KINDS = ['signatures', 'decisions', 'all'] as const;

export async function ledger(ctx: CommandContext): Promise<number> {
  const query = readQuery(ctx);
  const kind = readKind(ctx);
  const store = await openLedger(ctx);
  try {
    const [signatures, decisions] = await Promise.all([
      kind === 'decisions' ? [] : store.signatures(query),
      kind === 'signatures' ? [] : store.decisions(query),
    ]);
    if (ctx.json) printJson(ctx.out, { signatures, decisions });
    else ctx.out.write(ledgerText(signatures, decisions, kind));
    return EXIT.ok;
  } finally {
    await store.close();
  }
}

export async function findings(ctx: CommandContext): Promise<number> {
  const store = await openLedger(ctx);
  try {
    const found = await store.findings({ includeResolved: ctx.flags.boolean('all') });
    if (ctx.json) printJson(ctx.out, found.map(findingView));
    else ctx.out.write(findingsText(found));
    return EXIT.ok;
  } finally {
    await store.close();
  }
}

/** The local ledger (journal.path of the config), or the DynamoDB table named by `--table`. */
async function openLedger(ctx: CommandContext): Promise<Ledger> {
  const tableName = ctx.flags.string('table');
  const endpoint = ctx.flags.string('endpoint');
  if (tableName === undefined) {
    if (endpoint !== undefined) throw usage('--endpoint', 'goes with --table NAME');
    const config = await loadConfigFile(ctx.configPath);
    return SqliteLedger.openReadOnly(config.journal.path, { retentionDays: config.ledger.retentionDays });
  }
  if (!/^[A-Za-z0-9_.-]{3,255}$/.test(tableName))
    throw usage('--table', `"${tableName}" is not a DynamoDB table name`);
  if (endpoint !== undefined && !/^https?:\/\/[^\s/]+/.test(endpoint))
    throw usage('--endpoint', `"${endpoint}" is not an http(s) URL`);
  // Loaded only here: the AWS SDK is not needed for the local ledger.
  const [{ DynamoDBClient }, { DynamoLedger }] = await Promise.all([
    import('@aws-sdk/client-dynamodb'),
    import('../../lib/ledger/dynamodb'),
  ]);
  const client = new DynamoDBClient(endpoint !== undefined ? { endpoint } : {});
  const store = new DynamoLedger({ client, table: tableName, retentionDays: 1, windowDays: 1 });
  return {
    write: (batch) => store.write(batch),
    signatures: (query) => store.signatures(query),
    decisions: (query) => store.decisions(query),
    admitted: (since) => store.admitted(since),
    findings: (options) => store.findings(options),
    saveFindings: (list) => store.saveFindings(list),
    prune: (now) => store.prune(now),
    close: async () => {
      await store.close();
      client.destroy();
    },
  };
}

const usage = (flag: string, message: string): InputError => new InputError('REQUEST_INVALID', flag, message);

/** The filters of `signet ledger`, checked. */
export function readQuery(ctx: Pick<CommandContext, 'flags'>, now = Date.now()): LedgerQuery {
  const { flags } = ctx;
  const image = flags.string('image');
  const digest = flags.string('digest');
  const witness = flags.string('witness');
  const since = flags.string('since');
  const until = flags.string('until');
  const limit = flags.string('limit');
  let query: { -readonly [K in keyof LedgerQuery]: LedgerQuery[K] } = {};
  if (image !== undefined) query = { ...query, ...imageQuery(image) };
  if (digest !== undefined) {
    if (!/^sha256:[0-9a-f]{64}$/.test(digest))
      throw usage('--digest', `must be sha256:<64 hex digits>, got "${digest}"`);
    if (query.digest !== undefined && query.digest !== digest)
      throw usage('--digest', 'differs from the digest --image names');
    query.digest = digest;
  }
  if (witness !== undefined) query.witness = witness;
  if (since !== undefined) query.since = timeOf('--since', since, now);
  if (until !== undefined) query.until = timeOf('--until', until, now);
  if (query.since !== undefined && query.until !== undefined && query.until <= query.since)
    throw usage('--until', 'must be after --since');
  query.limit = DEFAULT_LIMIT;
  if (limit !== undefined) {
    if (!/^[1-9][0-9]{0,5}$/.test(limit))
      throw usage('--limit', `must be a whole number from 1, got "${limit}"`);
    query.limit = Number(limit);
  }
  return query;
}

/** `--image`: the repository, and the tag or digest only when written. */
function imageQuery(input: string): Pick<LedgerQuery, 'repository' | 'tag' | 'digest'> {
  const ref = parseReference(input, '--image');
  const [name] = input.split('@', 1) as [string];
  const lastSegment = name.slice(name.lastIndexOf('/') + 1);
  const tagWritten = lastSegment.includes(':');
  return {
    repository: repositoryName(ref),
    ...(tagWritten && ref.tag !== undefined ? { tag: ref.tag } : {}),
    ...(ref.digest !== undefined ? { digest: ref.digest } : {}),
  };
}

const AGE = /^(\d+)(s|m|h|d)$/;
const UNIT_MS: Readonly<Record<string, number>> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** A date-time with a zone, a date (UTC midnight), or an age before `now`. */
export function timeOf(flag: string, value: string, now: number): number {
  const age = AGE.exec(value);
  if (age !== null) return now - Number(age[1]) * (UNIT_MS[age[2] as string] as number);
  const dateOnly = /^\d{4}-\d{2}-\d{2}$/.test(value);
  const zoned = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/i.test(value);
  const at = dateOnly ? Date.parse(`${value}T00:00:00Z`) : zoned ? Date.parse(value) : Number.NaN;
  // Date.parse rolls a day the month lacks over into the next month (2026-02-30 is 2 March).
  if (Number.isNaN(at) || !isCalendarDate(value.slice(0, 10))) {
    throw usage(
      flag,
      `must be a date-time with a zone (2026-11-01T00:00:00Z), a date (2026-11-01) or an age (90m, 24h, 7d), got "${value}"`,
    );
  }
  return at;
}

/** True when `YYYY-MM-DD` names a day its month has. */
const isCalendarDate = (date: string): boolean =>
  new Date(`${date}T00:00:00Z`).toISOString().slice(0, 10) === date;

function readKind(ctx: CommandContext): (typeof KINDS)[number] {
  const kind = ctx.flags.string('kind') ?? 'all';
  if (!(KINDS as readonly string[]).includes(kind))
    throw usage('--kind', `must be one of ${KINDS.join(', ')}, got "${kind}"`);
  return kind as (typeof KINDS)[number];
}

const time = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
const shortDigest = (digest: string | undefined): string =>
  digest === undefined ? '-' : `${digest.slice(0, 19)}…`;

/** The tables `signet ledger` prints on a terminal. */
export function ledgerText(
  signatures: readonly SignatureRecord[],
  decisions: readonly DecisionRecord[],
  kind: string,
): string {
  const parts: string[] = [];
  if (kind !== 'decisions') {
    parts.push(
      signatures.length === 0
        ? 'no signatures\n'
        : `Signatures\n${table(
            ['SIGNED AT', 'IMAGE', 'RULE', 'WITNESS', 'KEY ID', 'ALGORITHM', 'STATUS'],
            signatures.map((s) => [
              time(s.signedAt),
              `${s.registry}/${s.repository}${s.tag !== undefined ? `:${s.tag}` : ''}@${s.digest}`,
              s.rule,
              s.witness,
              s.keyId === undefined ? '-' : shortDigest(s.keyId),
              s.algorithm,
              s.status,
            ]),
          )}`,
    );
  }
  if (kind !== 'signatures') {
    parts.push(
      decisions.length === 0
        ? 'no decisions\n'
        : `Decisions\n${table(
            ['DECIDED AT', 'EFFECT', 'SOURCE', 'OBJECT', 'IMAGES'],
            decisions.map((d) => [
              time(d.decidedAt),
              d.effect,
              d.source,
              d.object ?? (d.namespace !== undefined ? `namespace ${d.namespace}` : '-'),
              d.images
                .map(
                  (i) =>
                    `${i.reference ?? i.image}${i.digest !== undefined && !(i.reference ?? '').includes('@') ? ` (${shortDigest(i.digest)})` : ''}: ${i.verdict}${i.reason !== undefined ? ` ${i.reason}` : ''}`,
                )
                .join(', '),
            ]),
          )}`,
    );
  }
  return parts.join('\n');
}

/** A finding as `signet findings --json` prints it: times as ISO 8601. */
function findingView(f: Finding): Record<string, unknown> {
  return {
    id: f.id,
    image: f.reference,
    digest: f.digest,
    namespace: f.namespace === '' ? null : f.namespace,
    cluster: f.cluster === '' ? null : f.cluster,
    code: f.code,
    message: f.message,
    policies: f.policies,
    firstFoundAt: new Date(f.firstFoundAt).toISOString(),
    lastFoundAt: new Date(f.lastFoundAt).toISOString(),
    resolvedAt: f.resolvedAt === undefined ? null : new Date(f.resolvedAt).toISOString(),
    lastAdmittedAt: new Date(f.lastAdmittedAt).toISOString(),
  };
}

/** The table `signet findings` prints on a terminal. */
export function findingsText(found: readonly Finding[]): string {
  if (found.length === 0) return 'no findings\n';
  const rows = found.map((f) => [
    time(f.firstFoundAt),
    f.resolvedAt === undefined ? f.code : `${f.code} (resolved ${time(f.resolvedAt)})`,
    f.reference,
    shortDigest(f.digest),
    f.namespace === '' ? '-' : f.namespace,
    f.cluster === '' ? '-' : f.cluster,
  ]);
  const details = found.map((f) => `  ${f.id}: ${f.message}`);
  return `${table(['FOUND AT', 'CODE', 'IMAGE', 'DIGEST', 'NAMESPACE', 'CLUSTER'], rows)}\n${details.join('\n')}\n`;
}
