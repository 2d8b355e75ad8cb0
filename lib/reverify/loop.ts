/**
 * Re-verification rounds every `reverify.intervalSeconds` in the local service: the next round
 * starts an interval after the previous one ended (never two at once), and a failed round (the
 * ledger unreadable) is logged and retried at the next interval.
 */
import { describeError } from '../core/errors';
import type { Logger } from '../core/logger';
import type { Reverifier, RoundInput, RoundSummary } from './reverifier';

/** What the loop runs. */
export interface ReverifyLoopOptions {
  readonly reverifier: Reverifier;
  /** Builds a round's verifier, keys and settings from the configuration as it is now. */
  readonly input: () => RoundInput;
  readonly intervalMs: number;
  readonly logger: Logger;
  /** Told about every round that finished (tests, metrics). */
  readonly onRound?: (summary: RoundSummary) => void;
}

/** The local service's re-verification schedule. */
export class ReverifyLoop {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = true;

  constructor(private readonly options: ReverifyLoopOptions) {}

  /** Schedules the first round one interval from now. */
  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.schedule();
  }

  /** Runs one round now (or joins the one running) and resolves when it ends. */
  runOnce(): Promise<void> {
    this.running ??= this.round().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  /** No new round; waits for the one running, if any. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.runOnce().finally(() => this.schedule());
    }, this.options.intervalMs);
    this.timer.unref();
  }

  private async round(): Promise<void> {
    try {
      const summary = await this.options.reverifier.round(this.options.input());
      this.options.onRound?.(summary);
    } catch (err) {
      this.options.logger.error('re-verification round failed', { cause: describeError(err) });
    }
  }
}
