import { SignetError } from '../core/errors';

/** What went wrong with the journal; each code fixes what the caller can do about it. */
export type JournalErrorCode =
  /** Another live process owns the journal (its lock file names a running pid). */
  | 'JOURNAL_LOCKED'
  /** SQLite refused a write (disk full, read-only file, busy, closed): the push was not recorded. */
  | 'JOURNAL_WRITE_FAILED'
  /** The journal file is missing, is not a SQLite database, or holds a row Signet cannot read. */
  | 'JOURNAL_UNREADABLE'
  /** The journal was written by a newer Signet whose schema this code does not know. */
  | 'JOURNAL_VERSION';

/** The durable push journal could not be opened, read or written; `file` names the database. */
export class JournalError extends SignetError<JournalErrorCode> {
  override readonly name = 'JournalError';
  readonly file: string;

  constructor(code: JournalErrorCode, file: string, message: string, options?: { cause?: unknown }) {
    super(code, `${file}: ${message}`, options);
    this.file = file;
  }
}
