/**
 * The ledger table's key schema, shared by the store (`dynamodb.ts`), the CDK construct that
 * creates the table and the test endpoint that stands in for DynamoDB, so the three cannot drift.
 * This file imports nothing: `cdk/` reads it without loading the AWS SDK.
 *
 * One table, generic key names (single-table design):
 * - signature: `DIGEST#<digest>` / `SIG#<id>`; by repository, by witness, by day.
 * - decision: one item per image, `DIGEST#<digest>` / `DEC#<time>#<id>#<n>` (or `DECISION#<id>`
 *   for a decision without a digest); by repository and by day; expires with the retention.
 * - admitted image: `ADMITTED#<shard>` / placement key; expires when it leaves the window.
 * - finding: `FINDING` / `<id>`; a resolved one expires with the retention.
 */

/** Key attribute names of the table and its global secondary indexes (all strings). */
export const LEDGER_TABLE_SCHEMA = {
  partitionKey: 'pk',
  sortKey: 'sk',
  /** Epoch seconds; DynamoDB deletes an item some time after it passes. */
  timeToLiveAttribute: 'expiresAt',
  indexes: {
    byRepository: { partitionKey: 'gsi1pk', sortKey: 'gsi1sk' },
    byWitness: { partitionKey: 'gsi2pk', sortKey: 'gsi2sk' },
    byDay: { partitionKey: 'gsi3pk', sortKey: 'gsi3sk' },
  },
} as const;

/** The index names, as the construct creates them and queries name them. */
export type LedgerIndexName = keyof typeof LEDGER_TABLE_SCHEMA.indexes;

/** Partitions of the admitted images (their writes spread over this many keys). */
export const ADMITTED_SHARDS = 8;
