import { SignetError } from '../core/errors';

/** What went wrong with the ledger store; `store` names it (the SQLite file, the DynamoDB table). */
export type LedgerErrorCode =
  /** The store refused a write (disk full, read-only, throttled, access denied): records were not kept. */
  | 'LEDGER_WRITE_FAILED'
  /** The store cannot be read: missing, not a Signet ledger, access denied, unreachable. */
  | 'LEDGER_UNREADABLE'
  /** The ledger tables were written by a newer Signet whose schema this code does not know. */
  | 'LEDGER_VERSION';

/** The ledger could not be opened, read or written. */
export class LedgerError extends SignetError<LedgerErrorCode> {
  override readonly name = 'LedgerError';
  readonly store: string;

  constructor(code: LedgerErrorCode, store: string, message: string, options?: { cause?: unknown }) {
    super(code, `${store}: ${message}`, options);
    this.store = store;
  }
}
