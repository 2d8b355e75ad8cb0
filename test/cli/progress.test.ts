/**
 * The progress line of `signet sign --all`: what it renders for a backfill's progress, and how it
 * redraws in place and steps aside for log lines; and the summary the command ends with. No
 * timing is asserted: the clock is a counter.
 */
import { jsonLogger } from '../../lib/core/logger';
import type { BackfillProgress, BackfillSummary } from '../../lib/signing/backfill';
import { backfillExitCode, writeBackfillSummary } from '../../cli/commands/sign';
import { formatDuration, ProgressLine, renderProgress } from '../../cli/progress';
import { EXIT } from '../../cli/spec';

const progress = (overrides: Partial<BackfillProgress> = {}): BackfillProgress => ({
  total: 300,
  listing: false,
  done: 120,
  counts: { signed: 100, 'already-signed': 18, 'would-sign': 0, 'not-signed': 0, failed: 2 },
  rate: 12.46,
  etaSeconds: 14.4,
  ...overrides,
});

/** A terminal stream that keeps what was written. */
class Capture {
  readonly isTTY = true;
  text = '';
  write(chunk: string): boolean {
    this.text += chunk;
    return true;
  }
}

describe('renderProgress', () => {
  it('shows the bar, done/total, percent, rate, ETA and failures', () => {
    expect(renderProgress(progress())).toBe(
      '[##########--------------]  120/300  40%  12.5/s  ETA 0:14  2 failed',
    );
  });

  it('leaves failures out while there are none, and the ETA open before the first image', () => {
    const line = renderProgress(
      progress({
        done: 0,
        rate: 0,
        etaSeconds: undefined,
        counts: { signed: 0, 'already-signed': 0, 'would-sign': 0, 'not-signed': 0, failed: 0 },
      }),
    );
    expect(line).toBe('[------------------------]  0/300  0%  0.0/s  ETA --');
  });

  it('is full at the end, and full for nothing to do', () => {
    expect(renderProgress(progress({ done: 300, etaSeconds: 0 }))).toMatch(/^\[#{24}\] {2}300\/300 {2}100% /);
    expect(renderProgress(progress({ total: 0, done: 0 }))).toMatch(/^\[#{24}\] {2}0\/0 {2}100% /);
  });

  it('counts the images found while listing', () => {
    expect(renderProgress(progress({ listing: true, total: 42 }))).toBe(
      'listing images... 42 found  2 failed',
    );
  });
});

describe('formatDuration', () => {
  it.each([
    [0, '0:00'],
    [14.4, '0:14'],
    [75, '1:15'],
    [3725, '1:02:05'],
    [-3, '0:00'],
  ])('%d s is %s', (seconds, text) => {
    expect(formatDuration(seconds)).toBe(text);
  });
});

describe('ProgressLine', () => {
  let out: Capture;
  let clock: number;
  let line: ProgressLine;
  beforeEach(() => {
    out = new Capture();
    clock = 0;
    line = new ProgressLine(out, () => clock);
  });

  it('redraws the line in place, at most every 100 ms unless forced', () => {
    line.update(progress({ done: 1 }));
    line.update(progress({ done: 2 }));
    clock = 150;
    line.update(progress({ done: 3 }));
    line.update(progress({ done: 4 }), true);
    const draws = out.text.split('\r\x1b[2K').filter(Boolean);
    expect(draws.map((d) => /\d+\/300/.exec(d)?.[0])).toEqual(['1/300', '3/300', '4/300']);
    expect(out.text).not.toContain('\n');
  });

  it('clears itself once, and only when shown', () => {
    line.clear();
    expect(out.text).toBe('');
    line.update(progress());
    line.clear();
    line.clear();
    expect(out.text.endsWith('\r\x1b[2K')).toBe(true);
    expect(out.text.split('\r\x1b[2K')).toHaveLength(3);
  });

  it('steps aside for a log line and draws itself again after it', () => {
    const logged: string[] = [];
    const logger = line.around(
      jsonLogger('debug', (text) => {
        out.write(`${text}\n`);
        logged.push(text);
      }),
      false,
    );
    line.update(progress());
    logger.warn('slow registry', { host: 'r' });
    expect(logged).toHaveLength(1);
    const after = out.text.slice(out.text.indexOf('slow registry'));
    expect(after.startsWith(`slow registry","host":"r"}\n\r\x1b[2K[##########`)).toBe(true);
    expect(after).toContain('120/300');
  });

  it('drops info and debug lines when quiet, keeping warnings and errors', () => {
    const logged: string[] = [];
    const logger = line.around(
      jsonLogger('debug', (text) => logged.push(text)),
      true,
    );
    logger.debug('d');
    logger.info('image signed');
    logger.warn('w');
    logger.error('e');
    expect(logged.map((l) => (JSON.parse(l) as { message: string }).message)).toEqual(['w', 'e']);
  });
});

describe('the summary of signet sign --all', () => {
  const summary = (overrides: Partial<BackfillSummary> = {}): BackfillSummary => ({
    ...progress({ done: 300, etaSeconds: 0 }),
    registry: 'r.example.com',
    pattern: 'r.example.com/team-a',
    dryRun: false,
    interrupted: false,
    repositories: 3,
    durationMs: 75_000,
    results: [
      {
        image: 'r.example.com/team-a/app@sha256:1',
        repository: 'team-a/app',
        digest: 'sha256:1',
        tags: ['v1'],
        status: 'failed',
        rules: [],
        error: 'r.example.com: push denied',
        errorCode: 'DENIED',
      },
      {
        image: 'r.example.com/team-a/tool',
        repository: 'team-a/tool',
        digest: '',
        tags: [],
        status: 'failed',
        rules: [],
      },
    ],
    ...overrides,
  });
  const written = (value: BackfillSummary): string => {
    const out = new Capture();
    writeBackfillSummary(out, value);
    return out.text;
  };

  it('counts each status, then lists the failed images with their error code', () => {
    expect(written(summary())).toBe(
      [
        '300 images in 3 repositories under r.example.com/team-a, in 1:15',
        'STATUS          IMAGES',
        'signed          100',
        'already-signed  18',
        'would-sign      0',
        'not-signed      0',
        'failed          2',
        '',
        'FAILED                             CODE      ERROR',
        'r.example.com/team-a/app@sha256:1  DENIED    r.example.com: push denied',
        'r.example.com/team-a/tool          INTERNAL',
        '',
      ].join('\n'),
    );
  });

  it('says when there was nothing to do', () => {
    expect(written(summary({ total: 0, done: 0, dryRun: true, results: [] }))).toBe(
      'nothing to do: no image under r.example.com/team-a (dry run) is covered by an enabled signing rule\n',
    );
  });

  it.each([
    ['an image failed', {}, EXIT.failed],
    [
      'the run was interrupted',
      { interrupted: true, counts: { ...progress().counts, failed: 0 } },
      EXIT.failed,
    ],
    ['nothing was covered', { total: 0, counts: { ...progress().counts, failed: 0 } }, EXIT.nothingToDo],
    ['every image is signed', { counts: { ...progress().counts, failed: 0 } }, EXIT.ok],
  ])('exits as it should when %s', (_when, overrides: Partial<BackfillSummary>, code) => {
    expect(backfillExitCode(summary(overrides))).toBe(code);
  });
});
