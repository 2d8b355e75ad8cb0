/**
 * The embedded registry under supervision: when its process exits (a crash, an OOM kill, someone's
 * `kill`), Signet logs it with the registry's last log lines, reports not-ready, and starts it again
 * with exponential backoff. A registry that keeps crashing is logged as an error each time the
 * crashes within a window pass a threshold; Signet keeps trying at the longest backoff.
 */
import type { Logger } from '../lib/core/logger';
import {
  describeExit,
  startEmbeddedRegistry,
  type EmbeddedRegistry,
  type EmbeddedRegistryOptions,
  type RegistryExit,
} from './embedded-registry';

/** How the supervisor restarts; every field has a default. */
export interface SupervisorOptions {
  /** First wait before a restart; doubles per crash up to `maxBackoffMs` (default 500 ms, 30 s). */
  readonly baseBackoffMs?: number;
  readonly maxBackoffMs?: number;
  /** Crashes within `windowMs` (default 5 in 60 s) that make it an error worth an alarm. */
  readonly crashThreshold?: number;
  readonly windowMs?: number;
  /** Lines of the registry's log kept with each crash report (default 20). */
  readonly logLines?: number;
}

/** What the supervisor knows about the registry right now (for `/readyz`). */
export interface RegistryHealth {
  readonly up: boolean;
  readonly restarts: number;
  /** Why it is down, when it is. */
  readonly reason: string | undefined;
}

/** Runs the embedded registry and starts it again whenever it exits unasked. */
export class SupervisedRegistry {
  private current: EmbeddedRegistry | undefined;
  private stopping = false;
  private restarts = 0;
  private crashes: number[] = [];
  private down: string | undefined = 'not started';
  private timer: NodeJS.Timeout | undefined;
  /** A restart under way, which `stop` must wait for. */
  private restarting: Promise<void> | undefined;
  private readonly settings: Required<SupervisorOptions>;

  constructor(
    private readonly registry: EmbeddedRegistryOptions,
    private readonly logger: Logger,
    options: SupervisorOptions = {},
  ) {
    this.settings = {
      baseBackoffMs: options.baseBackoffMs ?? 500,
      maxBackoffMs: options.maxBackoffMs ?? 30_000,
      crashThreshold: options.crashThreshold ?? 5,
      windowMs: options.windowMs ?? 60_000,
      logLines: options.logLines ?? 20,
    };
  }

  /** Starts the registry; a first start that fails throws (Signet does not start without it). */
  async start(): Promise<void> {
    this.current = await startEmbeddedRegistry(this.registry);
    this.down = undefined;
    this.watch(this.current);
  }

  /** The running registry process, if any. */
  get process(): EmbeddedRegistry | undefined {
    return this.current;
  }

  health(): RegistryHealth {
    return { up: this.down === undefined, restarts: this.restarts, reason: this.down };
  }

  /** Stops the registry and any restart in waiting. Idempotent. */
  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.timer);
    // A restart under way stops its own registry once it sees `stopping`.
    await this.restarting;
    await this.current?.stop();
  }

  private watch(running: EmbeddedRegistry): void {
    void running.exited.then((exit) => {
      if (this.stopping || this.current !== running) return;
      this.crashed(running, exit);
    });
  }

  private crashed(running: EmbeddedRegistry, exit: RegistryExit): void {
    const now = Date.now();
    this.crashes = [...this.crashes.filter((t) => now - t < this.settings.windowMs), now];
    const how = describeExit(exit);
    this.down = `the embedded registry ${how}; restarting`;
    const lastLines = running.logTail().trim().split('\n').slice(-this.settings.logLines);
    const backoffMs = Math.min(
      this.settings.maxBackoffMs,
      this.settings.baseBackoffMs * 2 ** Math.max(0, this.crashes.length - 1),
    );
    const fields = { registry: this.registry.host, exit: how, restartInMs: backoffMs, lastLines };
    if (this.crashes.length >= this.settings.crashThreshold) {
      this.logger.error('embedded registry keeps crashing', {
        ...fields,
        crashes: this.crashes.length,
        windowMs: this.settings.windowMs,
      });
    } else {
      this.logger.error('embedded registry exited', fields);
    }
    this.timer = setTimeout(() => {
      this.restarting = this.restart().finally(() => (this.restarting = undefined));
    }, backoffMs);
    this.timer.unref();
  }

  private async restart(): Promise<void> {
    if (this.stopping) return;
    try {
      const next = await startEmbeddedRegistry(this.registry);
      if (this.stopping) {
        await next.stop();
        return;
      }
      this.current = next;
      this.restarts++;
      this.down = undefined;
      this.logger.info('embedded registry restarted', {
        registry: this.registry.host,
        restarts: this.restarts,
      });
      this.watch(next);
    } catch (err) {
      // Failing to start counts as another crash: back off further and try again.
      this.crashed(
        { logTail: () => (err instanceof Error ? err.message : String(err)) } as EmbeddedRegistry,
        { code: null, signal: null, error: err instanceof Error ? err : new Error(String(err)) },
      );
    }
  }
}
