import { InputError, KeyError, RegistryError } from '../../lib/core/errors';
import { backoffDelay, DEFAULT_RETRY, type RetryPolicy, withRetry } from '../../lib/core/retry';

/** Tiny delays: the tests exercise the control flow, not the clock. */
const FAST: RetryPolicy = { attempts: 4, baseDelayMs: 1, maxDelayMs: 2 };

const throttled = (retryAfterMs?: number) =>
  new RegistryError('RATE_LIMITED', 'ghcr.io', 'too many requests', { status: 429, retryAfterMs });
const denied = () => new RegistryError('DENIED', 'ghcr.io', 'denied', { status: 403 });

/** An operation that fails with the given errors, in order, then returns `value`. */
function failingThen<T>(errors: readonly unknown[], value: T): jest.Mock<Promise<T>, [number]> {
  let calls = 0;
  return jest.fn(async (_attempt: number) => {
    const error = errors[calls++];
    if (calls <= errors.length) throw error;
    return value;
  });
}

describe('withRetry', () => {
  describe('when the operation succeeds at once', () => {
    it('returns its value after one attempt, without retrying', async () => {
      const op = failingThen([], 'ok');
      const onRetry = jest.fn();
      await expect(withRetry(op, FAST, { onRetry })).resolves.toBe('ok');
      expect(op).toHaveBeenCalledTimes(1);
      expect(onRetry).not.toHaveBeenCalled();
    });
  });

  describe('when retryable failures are followed by a success', () => {
    it('returns the value, passing the attempt number to each call', async () => {
      const op = failingThen([throttled(), new KeyError('KMS_THROTTLED', 'alias/k', 'slow down')], 'signed');
      await expect(withRetry(op, FAST)).resolves.toBe('signed');
      expect(op.mock.calls.map(([attempt]) => attempt)).toEqual([1, 2, 3]);
    });

    it('tells onRetry about each retry, with the attempt that failed and its error', async () => {
      const first = throttled();
      const second = new RegistryError('UNAVAILABLE', 'ghcr.io', 'bad gateway', { status: 502 });
      const onRetry = jest.fn();
      await withRetry(failingThen([first, second], 'ok'), FAST, { onRetry });
      expect(onRetry).toHaveBeenCalledTimes(2);
      expect(onRetry.mock.calls[0][0]).toMatchObject({ attempt: 1, error: first });
      expect(onRetry.mock.calls[1][0]).toMatchObject({ attempt: 2, error: second });
    });
  });

  describe('when every attempt fails with a retryable error', () => {
    it('makes exactly `attempts` attempts and rethrows the last error unchanged', async () => {
      const errors = [throttled(), throttled(), throttled(), throttled(), throttled()];
      const op = failingThen(errors, 'never');
      const onRetry = jest.fn();
      const rejection = withRetry(op, FAST, { onRetry });
      await expect(rejection).rejects.toBe(errors[3]);
      expect(op).toHaveBeenCalledTimes(FAST.attempts);
      expect(onRetry).toHaveBeenCalledTimes(FAST.attempts - 1);
    });

    it('makes one attempt when the policy allows one', async () => {
      const op = failingThen([throttled()], 'never');
      await expect(withRetry(op, { ...FAST, attempts: 1 })).toThrowWithCode(RegistryError, 'RATE_LIMITED');
      expect(op).toHaveBeenCalledTimes(1);
    });
  });

  describe('when the error is not retryable', () => {
    it.each([
      ['a denied registry request', denied()],
      ['a missing manifest', new RegistryError('NOT_FOUND', 'ghcr.io', 'manifest unknown', { status: 404 })],
      ['a disabled KMS key', new KeyError('KMS_DISABLED', 'alias/k', 'disabled')],
      ['an input error', new InputError('REFERENCE_INVALID', 'image', 'bad')],
      ['a plain Error', new Error('boom')],
    ])('rethrows %s after the first attempt', async (_name, error) => {
      const op = failingThen([error], 'never');
      const onRetry = jest.fn();
      await expect(withRetry(op, FAST, { onRetry })).rejects.toBe(error);
      expect(op).toHaveBeenCalledTimes(1);
      expect(onRetry).not.toHaveBeenCalled();
    });

    it('stops at the first non-retryable error after retryable ones', async () => {
      const op = failingThen([throttled(), denied(), throttled()], 'never');
      await expect(withRetry(op, FAST)).toThrowWithCode(RegistryError, 'DENIED');
      expect(op).toHaveBeenCalledTimes(2);
    });
  });

  describe('with a custom retryable predicate', () => {
    it('retries what the predicate accepts', async () => {
      const op = failingThen([new Error('flaky'), new Error('flaky')], 'ok');
      await expect(withRetry(op, FAST, { retryable: () => true })).resolves.toBe('ok');
      expect(op).toHaveBeenCalledTimes(3);
    });

    it('does not retry what the predicate refuses, even a throttling error', async () => {
      const op = failingThen([throttled()], 'never');
      await expect(withRetry(op, FAST, { retryable: () => false })).toThrowWithCode(
        RegistryError,
        'RATE_LIMITED',
      );
      expect(op).toHaveBeenCalledTimes(1);
    });

    it('retries a rejection with a non-object value the predicate accepts', async () => {
      const op = failingThen([undefined, null], 'ok');
      await expect(withRetry(op, FAST, { retryable: () => true })).resolves.toBe('ok');
      expect(op).toHaveBeenCalledTimes(3);
    });
  });

  describe('when the server asks for a delay (Retry-After)', () => {
    it('sleeps for that delay', async () => {
      const policy: RetryPolicy = { attempts: 2, baseDelayMs: 1, maxDelayMs: 1_000 };
      const onRetry = jest.fn();
      const setTimeoutSpy = jest.spyOn(global, 'setTimeout');
      try {
        await withRetry(failingThen([throttled(30)], 'ok'), policy, { onRetry });
        expect(setTimeoutSpy).toHaveBeenCalledWith(expect.any(Function), 30);
      } finally {
        setTimeoutSpy.mockRestore();
      }
      expect(onRetry.mock.calls[0][0].delayMs).toBe(30);
    });

    it('prefers the computed backoff when it is longer', async () => {
      const policy: RetryPolicy = { attempts: 2, baseDelayMs: 10, maxDelayMs: 10 };
      const onRetry = jest.fn();
      const random = jest.spyOn(Math, 'random').mockReturnValue(0.99);
      try {
        await withRetry(failingThen([throttled(1)], 'ok'), policy, { onRetry });
      } finally {
        random.mockRestore();
      }
      expect(onRetry.mock.calls[0][0].delayMs).toBe(9);
    });

    it('never waits longer than maxDelayMs', async () => {
      const policy: RetryPolicy = { attempts: 2, baseDelayMs: 1, maxDelayMs: 5 };
      const onRetry = jest.fn();
      await withRetry(failingThen([throttled(60_000)], 'ok'), policy, { onRetry });
      expect(onRetry.mock.calls[0][0].delayMs).toBe(5);
    });
  });

  it('keeps every delay within [0, maxDelayMs]', async () => {
    const policy: RetryPolicy = { attempts: 6, baseDelayMs: 1, maxDelayMs: 3 };
    const onRetry = jest.fn();
    await withRetry(
      failingThen([throttled(), throttled(), throttled(), throttled(), throttled()], 'ok'),
      policy,
      {
        onRetry,
      },
    );
    for (const [{ delayMs }] of onRetry.mock.calls) {
      expect(delayMs).toBeGreaterThanOrEqual(0);
      expect(delayMs).toBeLessThanOrEqual(3);
    }
  });
});

describe('backoffDelay', () => {
  const policy: RetryPolicy = { attempts: 10, baseDelayMs: 100, maxDelayMs: 1_000 };

  it('doubles the ceiling with each attempt (full jitter below it)', () => {
    const almostOne = () => 0.999_999;
    expect(backoffDelay(policy, 1, almostOne)).toBe(99);
    expect(backoffDelay(policy, 2, almostOne)).toBe(199);
    expect(backoffDelay(policy, 3, almostOne)).toBe(399);
  });

  it('caps the ceiling at maxDelayMs', () => {
    expect(backoffDelay(policy, 8, () => 0.999_999)).toBe(999);
  });

  it('can be zero', () => {
    expect(backoffDelay(policy, 3, () => 0)).toBe(0);
  });

  it('defaults to Math.random, staying below the ceiling', () => {
    for (let i = 0; i < 100; i++) {
      const delay = backoffDelay(DEFAULT_RETRY, 2);
      expect(delay).toBeGreaterThanOrEqual(0);
      expect(delay).toBeLessThan(DEFAULT_RETRY.baseDelayMs * 2);
    }
  });
});
