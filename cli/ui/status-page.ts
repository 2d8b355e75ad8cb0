/**
 * The status page of the local service (`GET /ui`): the last hour's counters as charts, then
 * admission denials, findings, recent signatures, failed signing attempts and dead letters.
 * Rendered on the server from a `StatusSource`, refreshed by the browser every 30 s, no script.
 */
import { minuteColumns } from './charts';
import { COLORS, badge, card, html, page, table, timestamp } from './html';
import type { SeriesName, StatusSource } from './source';

/** Rows per table. */
const ROWS = 25;
const REFRESH_SECONDS = 30;

const SERIES_LABELS: Readonly<Record<SeriesName, { label: string; color: string }>> = {
  pushes: { label: 'pushes received', color: COLORS.accent },
  signed: { label: 'signatures written', color: COLORS.allow },
  failed: { label: 'signing attempts failed', color: COLORS.warn },
  admitted: { label: 'reviews admitted', color: COLORS.allow },
  denied: { label: 'reviews denied', color: COLORS.deny },
};

/** The whole page. */
export async function renderStatusPage(
  source: StatusSource,
  context: { readonly now: number; readonly version: string },
): Promise<string> {
  const [series, denials, findings, signatures, failures, deadLetters] = await Promise.all([
    source.series(),
    source.recentDenials(ROWS),
    source.findings(ROWS),
    source.recentSignatures(ROWS),
    source.recentFailures(ROWS),
    source.deadLetters(ROWS),
  ]);
  const sum = (name: SeriesName): number =>
    (series.series.find((s) => s.name === name)?.values ?? []).reduce((a, b) => a + b, 0);
  const cards = html`<div class="cards">
    ${card('info', sum('pushes'), 'pushes, last hour', 'count-pushes')}
    ${card('allow', sum('signed'), 'signatures, last hour', 'count-signed')}
    ${card('warn', sum('failed'), 'failed attempts, last hour', 'count-failed')}
    ${card('allow', sum('admitted'), 'admitted, last hour', 'count-admitted')}
    ${card('deny', sum('denied'), 'denied, last hour', 'count-denied')}
    ${card('deny', deadLetters.length, deadLetters.length >= ROWS ? `dead letters (${ROWS}+)` : 'dead letters', 'count-dead-letters')}
  </div>`;
  const charts = series.series.map((s) => {
    const { label, color } = SERIES_LABELS[s.name];
    return html`<figure>
      <figcaption>${label}</figcaption>
      ${minuteColumns(s.values, { title: `${label} per minute`, color, id: `chart-${s.name}` })}
    </figure>`;
  });
  const mono = (value: string | undefined): { value: string | undefined; className: string } => ({
    value,
    className: 'mono',
  });
  const msg = (value: string): { value: string; className: string } => ({ value, className: 'msg' });

  const body = html`${cards}
    <section>
      <h2>Last hour, per minute</h2>
      <div class="charts">${charts}</div>
    </section>
    <section>
      <h2>Admission denials</h2>
      ${table(
        ['time', 'object', 'image', 'reason', 'message'],
        denials.map((d) => [
          timestamp(d.at),
          html`${d.object}${d.dryRun ? html` <em>(dry run)</em>` : undefined}${d.cluster !== undefined ? html` <em>cluster ${d.cluster}</em>` : undefined}`,
          mono(d.image),
          badge('deny', d.code),
          msg(d.message),
        ]),
        { empty: 'no admission denied since the service started', id: 'denials' },
      )}
    </section>
    <section>
      <h2>Findings</h2>
      <p class="note">
        Images admitted without being verified (audit-mode policies, failurePolicy: allow), and admitted
        images that re-verification found no longer trusted.
      </p>
      ${table(
        ['time', 'namespace', 'image', 'reason', 'message'],
        findings.map((f) => [
          timestamp(f.at),
          f.namespace ?? '',
          mono(f.image),
          badge('warn', f.code),
          msg(f.message),
        ]),
        { empty: 'no findings', id: 'findings' },
      )}
    </section>
    <section>
      <h2>Recent signatures</h2>
      ${table(
        ['time', 'image', 'rule', 'witness', 'status'],
        signatures.map((s) => [timestamp(s.at), mono(s.image), s.rule, s.witness, badge(s.status, s.status)]),
        { empty: 'nothing signed since the service started', id: 'signatures' },
      )}
    </section>
    <section>
      <h2>Failed signing attempts</h2>
      ${table(
        ['time', 'image', 'code', 'attempt', 'message'],
        failures.map((f) => [
          timestamp(f.at),
          mono(f.image),
          badge('failed', f.code),
          html`${f.attempt}${f.final ? html` <em>(dead-lettered)</em>` : html` <em>(will retry)</em>`}`,
          msg(f.message),
        ]),
        { empty: 'no signing attempt failed since the service started', id: 'failures' },
      )}
    </section>
    <section>
      <h2>Dead letters</h2>
      <p class="note">
        Pushes Signet gave up on; <span class="mono">signet replay --local</span> signs them again.
      </p>
      ${table(
        ['failed at', 'id', 'image', 'code', 'attempts', 'message'],
        deadLetters.map((d) => [
          timestamp(d.failedAt),
          mono(d.id),
          mono(d.image),
          badge('failed', d.code),
          { value: d.attempts, className: 'num' },
          msg(d.message),
        ]),
        { empty: 'no dead letters', id: 'dead-letters' },
      )}
    </section>`;
  return page({
    title: 'Signet status',
    subtitle: `${timestamp(context.now)} · signet ${context.version} · refreshes every ${REFRESH_SECONDS} s`,
    body,
    footer:
      'Counters and recent records are kept in memory since the service started; dead letters come from the journal.',
    refreshSeconds: REFRESH_SECONDS,
  });
}
