/**
 * The HTML report of `signet audit --html`: one self-contained file (inline CSS and SVG, no
 * script, nothing loaded from anywhere) that a platform team attaches to the change request that
 * switches admission to enforce. It shows the counts per namespace and per policy, a chart, every
 * denial with its reason, and what audit-mode policies would deny once they enforce.
 */
import type { AuditReport, AuditedImage, AuditedWorkload } from '../../lib/admission/audit';
import { stackedBars } from './charts';
import { COLORS, badge, card, html, page, table, type Cell } from './html';

/** Where the audit's inputs came from, for the report's header. */
export interface AuditReportContext {
  /** The config file, as the user named it. */
  readonly config: string;
  /** The List file, or `stdin`. */
  readonly input: string;
}

const OUTCOME_LABELS = {
  allow: 'admitted',
  warn: 'admitted with warnings',
  deny: 'denied',
  excluded: 'excluded namespace',
  unsupported: 'not a workload',
} as const;

const objectName = (w: AuditedWorkload): string =>
  `${w.kind} ${w.namespace !== undefined ? `${w.namespace}/` : ''}${w.name}`;

/** The report, as a whole HTML document. */
export function renderAuditReport(report: AuditReport, context: AuditReportContext): string {
  const { summary } = report;
  const outcomes = summary.outcomes;
  const cards = html`<div class="cards">
    ${card('info', summary.workloads - outcomes.excluded, 'workloads checked', 'count-workloads')}
    ${card('allow', outcomes.allow, 'admitted', 'count-allow')}
    ${card('warn', outcomes.warn, 'admitted with warnings', 'count-warn')}
    ${card('deny', outcomes.deny, 'would be denied', 'count-deny')}
    ${card('deny', summary.deniedOnceEnforced, 'denied once audit policies enforce', 'count-enforced')}
    ${card('', outcomes.excluded + outcomes.unsupported, 'not checked', 'count-unchecked')}
  </div>`;

  const chart = stackedBars(
    summary.namespaces.map((n) => ({
      label: n.namespace === '' ? '(cluster-scoped)' : n.namespace,
      segments: [
        { name: OUTCOME_LABELS.allow, value: n.allow, color: COLORS.allow },
        { name: OUTCOME_LABELS.warn, value: n.warn, color: COLORS.warn },
        { name: OUTCOME_LABELS.deny, value: n.deny, color: COLORS.deny },
        { name: OUTCOME_LABELS.excluded, value: n.excluded, color: COLORS.excluded },
        { name: OUTCOME_LABELS.unsupported, value: n.unsupported, color: COLORS.unsupported },
      ],
    })),
    { title: 'Workloads per namespace by outcome', id: 'namespace-chart' },
  );
  const reasons =
    summary.denialReasons.length === 0
      ? undefined
      : stackedBars(
          summary.denialReasons.map((r) => ({
            label: r.code,
            segments: [{ name: 'workloads denied', value: r.workloads, color: COLORS.deny }],
          })),
          { title: 'Denied workloads by reason', id: 'reason-chart' },
        );

  const num = (value: number): { value: number; className: string } => ({ value, className: 'num' });
  const namespaces = table(
    [
      'namespace',
      { label: 'admitted', className: 'num' },
      { label: 'warnings', className: 'num' },
      { label: 'denied', className: 'num' },
      { label: 'excluded', className: 'num' },
      { label: 'not workloads', className: 'num' },
    ],
    summary.namespaces.map((n) => [
      n.namespace === '' ? '(cluster-scoped)' : n.namespace,
      num(n.allow),
      num(n.warn),
      num(n.deny),
      num(n.excluded),
      num(n.unsupported),
    ]),
    { empty: 'the List holds no objects', id: 'namespaces' },
  );
  const policies = table(
    [
      'policy',
      'mode',
      { label: 'passed', className: 'num' },
      { label: 'warned', className: 'num' },
      { label: 'denied', className: 'num' },
    ],
    [
      ...summary.policies.map((p) => [p.policy, p.mode, num(p.pass), num(p.warn), num(p.deny)]),
      ...(summary.noPolicy.allow + summary.noPolicy.warn + summary.noPolicy.deny > 0
        ? [
            [
              html`<em>no policy selects the image</em>`,
              'admission.noMatchingPolicy',
              num(summary.noPolicy.allow),
              num(summary.noPolicy.warn),
              num(summary.noPolicy.deny),
            ],
          ]
        : []),
    ],
    { empty: 'no enabled policy', id: 'policies' },
  );

  const denied = byPlace(report.workloads.filter((w) => w.outcome === 'deny'));
  const denials = table(
    ['object', 'field', 'image', 'reason', 'message'],
    denied.flatMap((w) => denialRows(w)),
    { empty: 'nothing would be denied', id: 'denials' },
  );
  const enforced = byPlace(report.workloads).flatMap((w) =>
    w.images
      .filter((i) => i.deniedOnceEnforced.length > 0)
      .map((i) => [
        objectName(w),
        { value: i.image, className: 'mono' },
        i.deniedOnceEnforced.join(', '),
        { value: auditCode(i), className: 'mono' },
      ]),
  );
  const warnings = table(['object', 'image', 'audit-mode policies', 'reason'], enforced, {
    empty: 'no audit-mode policy would deny anything',
    id: 'enforce-denials',
  });
  const unchecked = report.workloads.filter((w) => w.outcome === 'excluded' || w.outcome === 'unsupported');

  const body = html`${cards}
    <section>
      <h2>Outcome per namespace</h2>
      <div class="charts">
        <figure>
          <figcaption>Workloads per namespace</figcaption>
          ${chart}
        </figure>
        ${
          reasons !== undefined
            ? html`<figure>
                <figcaption>Denied workloads by reason</figcaption>
                ${reasons}
              </figure>`
            : undefined
        }
      </div>
      ${namespaces}
    </section>
    <section>
      <h2>Per policy</h2>
      <p class="note">Workloads by the worst effect a policy had on any of their images.</p>
      ${policies}
    </section>
    <section>
      <h2>Would be denied (${denied.length})</h2>
      <p class="note">Each denied image of each workload, with the reason admission would give.</p>
      ${denials}
    </section>
    <section>
      <h2>Denied once audit-mode policies enforce (${enforced.length})</h2>
      <p class="note">Admitted now with a warning because their policy is in audit mode.</p>
      ${warnings}
    </section>
    <section>
      <h2>Not checked (${unchecked.length})</h2>
      <p class="note">Objects in excluded namespaces, and kinds without a pod template.</p>
      ${table(
        ['object', 'why'],
        unchecked.map((w) => [objectName(w), badge(w.outcome, OUTCOME_LABELS[w.outcome])]),
        { empty: 'every object was checked', id: 'unchecked' },
      )}
    </section>`;

  const images = summary.images;
  return page({
    title: 'Signet audit: what admission would decide',
    subtitle: html`${report.generatedAt} · config ${context.config} · input
    ${context.input}${report.cluster !== undefined ? html` · cluster ${report.cluster}` : undefined} ·
    ${summary.objects} objects, ${images.references} image references (${images.distinct} distinct,
    ${images.verifications} verifications)`,
    body,
    footer:
      'Generated by signet audit with the same admission code as POST /admission; no cluster was contacted.',
  });
}

function denialRows(workload: AuditedWorkload): Cell[][] {
  const images = workload.images.filter((i) => i.verdict === 'deny');
  if (images.length === 0) {
    // Denied without an image verdict: a malformed object, or the review's deadline.
    return [
      [
        objectName(workload),
        '',
        '',
        badge('deny', 'DENIED'),
        { value: workload.response.status?.message ?? 'denied', className: 'msg' },
      ],
    ];
  }
  return images.map((i) => [
    objectName(workload),
    { value: i.field, className: 'mono' },
    { value: i.image, className: 'mono' },
    badge('deny', i.code ?? 'DENIED'),
    { value: i.message, className: 'msg' },
  ]);
}

/** Workloads by namespace, then kind and name: how a team reads its own part. */
const byPlace = (workloads: readonly AuditedWorkload[]): AuditedWorkload[] =>
  [...workloads].sort((a, b) => {
    const ka = `${a.namespace ?? ''}\u0000${a.kind}\u0000${a.name}`;
    const kb = `${b.namespace ?? ''}\u0000${b.kind}\u0000${b.name}`;
    return ka < kb ? -1 : ka > kb ? 1 : 0;
  });

const auditCode = (image: AuditedImage): string =>
  image.policies
    .filter((p) => image.deniedOnceEnforced.includes(p.policy))
    .map((p) => p.code ?? 'UNVERIFIED')
    .join(', ');
