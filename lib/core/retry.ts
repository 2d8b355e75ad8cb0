import { isRetryable } from './errors';

/** How often and how patiently an operation is retried: exponential backoff with full jitter. */
export interface RetryPolicy {
  /** Attempts in all, the first included. */
  readonly attempts: number;
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 5, baseDelayMs: 100, maxDelayMs: 5_000 };

/** Observes retries, so that tests and metrics can count them. */
export type RetryObserver = (info: { attempt: number; delayMs: number; error: unknown }) => void;

/** A delay a server asked for (Retry-After), which overrides the computed backoff when longer. */
export interface HasRetryAfter {
  readonly retryAfterMs?: number;
}

export function backoffDelay(
  policy: RetryPolicy,
  attempt: number,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  return Math.floor(random() * ceiling);
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Runs `op` until it succeeds, fails with an error that is not retryable, or runs out of attempts.
 * The last error is rethrown unchanged.
 */
export async function withRetry<T>(
  op: (attempt: number) => Promise<T>,
  policy: RetryPolicy = DEFAULT_RETRY,
  options: { retryable?: (err: unknown) => boolean; onRetry?: RetryObserver } = {},
): Promise<T> {
  const retryable = options.retryable ?? isRetryable;
  for (let attempt = 1; ; attempt++) {
    try {
      return await op(attempt);
    } catch (error) {
      if (attempt >= policy.attempts || !retryable(error)) throw error;
      const asked =
        typeof error === 'object' && error !== null ? ((error as HasRetryAfter).retryAfterMs ?? 0) : 0;
      const delayMs = Math.min(policy.maxDelayMs, Math.max(asked, backoffDelay(policy, attempt)));
      options.onRetry?.({ attempt, delayMs, error });
      await sleep(delayMs);
    }
  }
}
