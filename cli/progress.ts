/**
 * The one-line progress of a long command on a terminal (`signet sign --all`): a bar, done/total,
 * rate, ETA and failures, redrawn in place on stderr so that stdout keeps only the result.
 */
import type { Logger } from '../lib/core/logger';
import type { BackfillProgress } from '../lib/signing/backfill';
import type { Out } from './output';

/** Cells of the bar. */
const BAR_WIDTH = 24;
/** Redraws at most this often: a terminal repainting per image would slow a fast run. */
const REDRAW_MS = 100;

/** `[#####-----]  120/300  40%  12.5/s  ETA 0:15  2 failed`; while listing, what was found so far. */
export function renderProgress(progress: BackfillProgress): string {
  const failed = progress.counts.failed > 0 ? `  ${progress.counts.failed} failed` : '';
  if (progress.listing) return `listing images... ${progress.total} found${failed}`;
  const fraction = progress.total === 0 ? 1 : Math.min(1, progress.done / progress.total);
  const filled = Math.round(fraction * BAR_WIDTH);
  const bar = `[${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}]`;
  const percent = `${Math.floor(fraction * 100)}%`;
  const eta = progress.etaSeconds === undefined ? 'ETA --' : `ETA ${formatDuration(progress.etaSeconds)}`;
  return `${bar}  ${progress.done}/${progress.total}  ${percent}  ${progress.rate.toFixed(1)}/s  ${eta}${failed}`;
}

/** `m:ss`, or `h:mm:ss` from an hour on. */
export function formatDuration(seconds: number): string {
  const total = Math.max(0, Math.round(seconds));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`;
}

/** A progress line on a terminal stream: redrawn in place, cleared before anything else is written. */
export class ProgressLine {
  private last: BackfillProgress | undefined;
  private drawnAt = 0;
  private shown = false;

  constructor(
    private readonly out: Out,
    private readonly now: () => number = Date.now,
  ) {}

  /** Shows `progress`; a redraw sooner than REDRAW_MS after the last waits for the next update. */
  update(progress: BackfillProgress, force = false): void {
    this.last = progress;
    const now = this.now();
    if (!force && this.shown && now - this.drawnAt < REDRAW_MS) return;
    this.drawnAt = now;
    this.draw();
  }

  /** Removes the line (before a log line, or at the end). */
  clear(): void {
    if (!this.shown) return;
    this.out.write('\r\x1b[2K');
    this.shown = false;
  }

  /**
   * A logger whose lines do not tear the progress line: each clears it, logs, and draws it again.
   * With `quiet`, info and debug lines are dropped (the summary at the end says what they would).
   */
  around(logger: Logger, quiet: boolean): Logger {
    const through =
      (level: keyof Logger) =>
      (message: string, fields?: Record<string, unknown>): void => {
        if (quiet && (level === 'info' || level === 'debug')) return;
        const shown = this.shown;
        this.clear();
        logger[level](message, fields);
        if (shown) this.draw();
      };
    return { debug: through('debug'), info: through('info'), warn: through('warn'), error: through('error') };
  }

  private draw(): void {
    if (this.last === undefined) return;
    this.out.write(`\r\x1b[2K${renderProgress(this.last)}`);
    this.shown = true;
  }
}
