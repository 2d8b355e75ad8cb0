/**
 * The ledger: what Signet signed and decided, and the findings of re-verification. The stores
 * are imported by path (`./sqlite` in the local service and CLI, `./dynamodb` on AWS) so that
 * importing the ledger never loads better-sqlite3 where it cannot run (the Lambdas).
 */
export { LedgerError, type LedgerErrorCode } from './errors';
export {
  admissionRecord,
  admittedImages,
  matchesDecision,
  matchesSignature,
  signatureRecords,
  signingTimes,
  verifyRecord,
} from './records';
export { LedgerRecorder, type LedgerRecorderOptions } from './recorder';
export type {
  AdmittedImage,
  DecisionEffect,
  DecisionImage,
  DecisionPolicy,
  DecisionRecord,
  DecisionSource,
  Finding,
  Ledger,
  LedgerBatch,
  LedgerQuery,
  SignatureRecord,
} from './types';
