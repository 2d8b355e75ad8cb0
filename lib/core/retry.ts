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

/** Waits `ms`; an aborted `signal` cuts the wait short and rejects with its reason. */
export const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });

/**
 * Runs `op` until it succeeds, fails with an error that is not retryable, or runs out of attempts.
 * The last error is rethrown unchanged. An aborted `signal` stops the retries: no further attempt
 * starts, a backoff wait ends at once, and the signal's reason is thrown.
 */
export async function withRetry<T>(
  op: (attempt: number) => Promise<T>,
  policy: RetryPolicy = DEFAULT_RETRY,
  options: { retryable?: (err: unknown) => boolean; onRetry?: RetryObserver; signal?: AbortSignal } = {},
): Promise<T> {
  const retryable = options.retryable ?? isRetryable;
  for (let attempt = 1; ; attempt++) {
    options.signal?.throwIfAborted();
    try {
      return await op(attempt);
    } catch (error) {
      if (attempt >= policy.attempts || !retryable(error)) throw error;
      const asked =
        typeof error === 'object' && error !== null ? ((error as HasRetryAfter).retryAfterMs ?? 0) : 0;
      const delayMs = Math.min(policy.maxDelayMs, Math.max(asked, backoffDelay(policy, attempt)));
      options.onRetry?.({ attempt, delayMs, error });
      await sleep(delayMs, options.signal);
    }
  }
}
