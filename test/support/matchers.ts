import { SignetError } from '../../lib/core/errors';

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace jest {
    interface Matchers<R> {
      /** The function throws (or the promise rejects with) a SignetError of this class and code. */
      toThrowWithCode(errorClass: abstract new (...args: never[]) => SignetError, code: string): R;
    }
  }
}

function check(
  this: jest.MatcherContext,
  thrown: unknown,
  errorClass: abstract new (...args: never[]) => SignetError,
  code: string,
): jest.CustomMatcherResult {
  const ok = thrown instanceof errorClass && thrown.code === code;
  const got =
    thrown instanceof SignetError
      ? `${thrown.name} ${thrown.code}: ${thrown.message}`
      : thrown === undefined
        ? 'nothing thrown'
        : String(thrown);
  return {
    pass: ok,
    message: () => `expected ${errorClass.name} with code ${code}${ok ? ' not' : ''}, got ${got}`,
  };
}

expect.extend({
  toThrowWithCode(this: jest.MatcherContext, received: unknown, errorClass, code: string) {
    if (received instanceof Promise) {
      return received.then(
        () => check.call(this, undefined, errorClass, code),
        (err: unknown) => check.call(this, err, errorClass, code),
      );
    }
    if (typeof received !== 'function') throw new Error('toThrowWithCode expects a function or a promise');
    try {
      (received as () => unknown)();
    } catch (err) {
      return check.call(this, err, errorClass, code);
    }
    return check.call(this, undefined, errorClass, code);
  },
});
