/**
 * The `revocations` section: signatures that no longer count, by the key that made them or by the
 * rule that made them, optionally only those made after a time ("signatures by key K made after
 * T are void"). Every problem is recorded with its path; nothing is cross-checked against the
 * rules, because revoking a rule that has since been removed from the config is the common case.
 */
import type { Revocation, RevocationTarget } from './types';
import { Issues, ObjectReader, checkName } from './validate';

const KEY_ID = /^sha256:[0-9a-f]{64}$/;
// An RFC 3339 date-time with a zone: a revocation time must not depend on the machine's zone.
const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})$/i;

/** Reads one `revocations[i]`; undefined (with issues) when it is wrong. */
export function readRevocation(value: unknown, at: string, issues: Issues): Revocation | undefined {
  const r = ObjectReader.of(issues, at, value, ['keyId', 'rule', 'after', 'reason']);
  if (r === undefined) return undefined;
  const before = issues.count;
  let target: RevocationTarget | undefined;
  if (r.has('keyId') && r.has('rule')) {
    r.issue('rule', 'give either keyId or rule, not both (one revocation each)');
  } else if (r.has('keyId')) {
    const keyId = r.requiredString('keyId', (id) =>
      KEY_ID.test(id)
        ? undefined
        : `must be a key id, "sha256:" and 64 lowercase hex digits (the payload's dev.signet/key-id), got "${id}"`,
    );
    if (keyId !== undefined) target = { $case: 'keyId', keyId };
  } else if (r.has('rule')) {
    const rule = r.requiredString('rule', checkName);
    if (rule !== undefined) target = { $case: 'rule', rule };
  } else {
    issues.add(at, 'needs keyId (a witness key) or rule (a signing rule)');
  }
  const after = readAfter(r);
  const reason = r.optionalString('reason');
  if (target === undefined || issues.count > before) return undefined;
  return { target, after, reason };
}

/** `after`: an RFC 3339 date-time with a zone, as epoch ms. */
function readAfter(r: ObjectReader): number | undefined {
  const raw = r.get('after');
  if (raw === undefined) return undefined;
  // A YAML 1.1 timestamp parser would hand over a Date; the loader's core schema gives strings.
  if (raw instanceof Date) return Number.isNaN(raw.getTime()) ? invalid(r) : raw.getTime();
  const text = r.requiredString('after');
  if (text === undefined) return undefined;
  const at = DATE_TIME.test(text) ? Date.parse(text) : Number.NaN;
  return Number.isNaN(at) ? invalid(r, text) : at;
}

function invalid(r: ObjectReader, text?: string): undefined {
  r.issue(
    'after',
    `must be a date-time with a zone, e.g. "2026-11-01T00:00:00Z"${text !== undefined ? `, got "${text}"` : ''}`,
  );
  return undefined;
}

/** Two revocations of the same target and time are one too many: probably a copy-paste slip. */
export function checkRevocations(
  reads: readonly { readonly revocation: Revocation; readonly path: string }[],
  issues: Issues,
): void {
  const seen = new Map<string, string>();
  for (const { revocation, path } of reads) {
    const { target, after } = revocation;
    const key = `${target.$case === 'keyId' ? `key:${target.keyId}` : `rule:${target.rule}`}@${after ?? ''}`;
    const first = seen.get(key);
    if (first !== undefined) issues.add(path, `the same revocation as ${first}`);
    else seen.set(key, path);
  }
}
