/** The durable push journal and the worker that signs from it. */
export { JournalError, type JournalErrorCode } from './errors';
export { SCHEMA_VERSION } from './schema';
export { Journal } from './store';
export type {
  AcceptedPush,
  DeadLetter,
  JournalDepth,
  JournalEntry,
  JournalFailure,
  JournalOptions,
  RequeuedLetter,
  ScanRecord,
} from './types';
export { type AttemptResult, JournalWorker, type JournalWorkerOptions } from './worker';
