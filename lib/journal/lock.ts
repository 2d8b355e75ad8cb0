/**
 * The journal's single-owner lock: a file next to the database holding the owner's pid. Only the
 * owner claims and recovers entries; if two services drained one journal, each would take the
 * other's running entries for crashed ones and sign them twice.
 */
import { randomUUID } from 'node:crypto';
import { closeSync, linkSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { resolve } from 'node:path';
import { describeError } from '../core/errors';
import { JournalError } from './errors';

/** A held owner lock; `release` is idempotent. */
export interface OwnerLock {
  readonly path: string;
  release(): void;
}

// A pid in a lock file can equal ours without being us (a container restarts its service as pid 1
// every time), so the locks this process holds are remembered here rather than inferred from pids.
const held = new Set<string>();

/**
 * Takes `<journalFile>.lock`, or throws JournalError `JOURNAL_LOCKED` when a live process (or this
 * one) holds it. A lock left by a dead process is taken over.
 */
export function acquireOwnerLock(journalFile: string): OwnerLock {
  const path = resolve(`${journalFile}.lock`);
  if (held.has(path)) {
    throw new JournalError('JOURNAL_LOCKED', journalFile, 'is already open in this process');
  }
  // A few rounds: a competing process may create or remove the file between our steps.
  for (let round = 0; round < 3; round++) {
    if (tryCreate(path, journalFile)) {
      held.add(path);
      return { path, release: () => release(path) };
    }
    const content = readLock(path);
    if (content === undefined) continue;
    const pid = parsePid(content);
    if (pid !== undefined && pid !== process.pid && isAlive(pid)) {
      throw new JournalError('JOURNAL_LOCKED', journalFile, `is owned by process ${pid} (${path})`);
    }
    // Stale: a dead pid, an unreadable file, or our pid left by an earlier incarnation. Remove it
    // only if it still says what we read, so that we never delete a lock someone just took over.
    if (readLock(path) === content) removeQuietly(path);
  }
  throw new JournalError('JOURNAL_LOCKED', journalFile, `could not take over the lock ${path}`);
}

/**
 * Creates the lock with its content in one step: the pid goes into a private temporary file that
 * is then hard-linked into place, which fails if the lock exists. A reader never sees an empty lock
 * (which it would have to call stale while its writer is still alive).
 */
function tryCreate(path: string, journalFile: string): boolean {
  const temporary = `${path}.${process.pid}.${randomUUID()}`;
  try {
    const fd = openSync(temporary, 'wx', 0o600);
    try {
      writeSync(fd, `${process.pid}\n`);
    } finally {
      closeSync(fd);
    }
    linkSync(temporary, path);
    return true;
  } catch (error) {
    if (errnoCode(error) === 'EEXIST') return false;
    throw new JournalError('JOURNAL_WRITE_FAILED', journalFile, `cannot create the lock ${path}`, {
      cause: error,
    });
  } finally {
    removeQuietly(temporary);
  }
}

function release(path: string): void {
  if (!held.delete(path)) return;
  // Someone may have taken over after deciding we were dead (a pid check raced our exit); theirs stays.
  if (parsePid(readLock(path) ?? '') === process.pid) removeQuietly(path);
}

/** The lock file's text, or undefined when it vanished in between. */
function readLock(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return undefined;
    throw new JournalError('JOURNAL_UNREADABLE', path, `cannot read the lock: ${describeError(error)}`, {
      cause: error,
    });
  }
}

function parsePid(content: string): number | undefined {
  const text = content.trim();
  if (!/^[1-9][0-9]{0,9}$/.test(text)) return undefined;
  return Number(text);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to another user.
    return errnoCode(error) === 'EPERM';
  }
}

function removeQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // Already gone, which is all we wanted.
  }
}

function errnoCode(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null && 'code' in error ? String(error.code) : undefined;
}
