import { RegistryError } from '../core/errors';
import type { ReadBudget } from './types';

/**
 * A ReadBudget of a fixed number of bytes, meant to be shared by every read of one unit of work
 * (an admission review, a signing): many small answers from a hostile registry cannot add up to
 * more than the limit. Once passed it stays passed, so later reads fail at their first byte.
 */
export class ByteBudget implements ReadBudget {
  readonly limitBytes: number;
  private readonly host: string;
  private usedBytes = 0;

  /** `host` names the registry in the error when the budget serves one; clients re-label it anyway. */
  constructor(limitBytes: number, host = 'registries') {
    if (!Number.isSafeInteger(limitBytes) || limitBytes < 0) {
      throw new RangeError(`a byte budget is a non-negative integer, not ${limitBytes}`);
    }
    this.limitBytes = limitBytes;
    this.host = host;
  }

  /** Bytes charged so far (may exceed the limit by the read that passed it). */
  get used(): number {
    return this.usedBytes;
  }

  /** Bytes still allowed. */
  get remaining(): number {
    return Math.max(0, this.limitBytes - this.usedBytes);
  }

  take(bytes: number, what: string): void {
    this.usedBytes += bytes;
    if (this.usedBytes > this.limitBytes) {
      throw new RegistryError(
        'BUDGET_EXCEEDED',
        this.host,
        `${what}: reads passed the ${this.limitBytes}-byte budget`,
      );
    }
  }
}
