/**
 * `signet audit [FILE] [--cluster C] [--html REPORT]`: what admission would decide for every
 * workload of a Kubernetes List, without the cluster (`lib/admission/audit.ts` decides; this
 * prints it and writes the HTML report).
 */
import { readFile, writeFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { auditWorkloads, readKubernetesList, type AuditReport } from '../../lib/admission/audit';
import { checkCluster } from '../../lib/admission/requests';
import { loadConfigFile } from '../../lib/config/load';
import { InputError, describeError } from '../../lib/core/errors';
import { createSignet } from '../../lib/signet';
import { displayPath, printJson, table } from '../output';
import { EXIT } from '../spec';
import { renderAuditReport } from '../ui/audit-report';
import type { CommandContext } from './context';

/** Denied objects a terminal shows; the JSON and the HTML report list all. */
const MAX_DENIALS_SHOWN = 50;

export async function audit(ctx: CommandContext): Promise<number> {
  const file = ctx.args[0] === undefined || ctx.args[0] === '-' ? undefined : ctx.args[0];
  const clusterFlag = ctx.flags.string('cluster');
  const cluster = clusterFlag === undefined ? undefined : checkCluster(clusterFlag, '--cluster');
  const htmlPath = ctx.flags.string('html');
  const config = await loadConfigFile(ctx.configPath);
  const objects = readKubernetesList(parseInput(await readInput(file), file));
  const signet = createSignet(config, { logger: ctx.logger });
  let report: AuditReport;
  try {
    report = await auditWorkloads(objects, signet.verifier, { cluster });
  } finally {
    signet.keys.close();
  }
  if (htmlPath !== undefined) {
    const document = renderAuditReport(report, {
      config: displayPath(ctx.configPath),
      input: file === undefined ? 'stdin' : displayPath(file),
    });
    try {
      await writeFile(htmlPath, document);
    } catch (err) {
      throw new InputError('REQUEST_INVALID', '--html', `cannot write ${htmlPath}: ${describeError(err)}`, {
        cause: err,
      });
    }
  }
  if (ctx.json) printJson(ctx.out, report);
  else ctx.out.write(auditText(report, { input: file ?? 'stdin', html: htmlPath }));
  return report.summary.outcomes.deny > 0 ? EXIT.failed : EXIT.ok;
}

async function readInput(file: string | undefined): Promise<string> {
  if (file !== undefined) {
    try {
      return await readFile(file, 'utf8');
    } catch (err) {
      throw new InputError('REQUEST_INVALID', 'FILE', `cannot read ${file}: ${describeError(err)}`, {
        cause: err,
      });
    }
  }
  if (process.stdin.isTTY === true) {
    throw new InputError(
      'REQUEST_INVALID',
      'FILE',
      'is required when stdin is a terminal: give a file, or pipe `kubectl get ... -o json` into signet audit',
    );
  }
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(Buffer.from(chunk as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}

/** `kubectl -o json` output, or `-o yaml` (JSON is tried first: it is what the docs ask for, and faster). */
function parseInput(text: string, file: string | undefined): unknown {
  const field = file === undefined ? 'stdin' : 'FILE';
  if (text.trim() === '')
    throw new InputError('REQUEST_INVALID', field, 'is empty: expected a Kubernetes List');
  try {
    return JSON.parse(text);
  } catch (jsonError) {
    try {
      return parseYaml(text, { maxAliasCount: 100 });
    } catch {
      throw new InputError('REQUEST_INVALID', field, `is not JSON (nor YAML): ${describeError(jsonError)}`, {
        cause: jsonError,
      });
    }
  }
}

/** The audit for a terminal: the totals, per namespace, per policy, and the denials. */
export function auditText(report: AuditReport, context: { input: string; html: string | undefined }): string {
  const { summary } = report;
  const o = summary.outcomes;
  const lines: string[] = [
    `Audit of ${summary.objects} objects from ${context.input}${report.cluster !== undefined ? ` for cluster ${report.cluster}` : ''}`,
    '',
  ];
  const totals: [string, string][] = [
    ['workloads checked', String(summary.workloads - o.excluded)],
    ['admitted', String(o.allow)],
    ['admitted with warnings', String(o.warn)],
    ['would be denied', String(o.deny)],
    ['denied once audit policies enforce', String(summary.deniedOnceEnforced)],
    [
      'not checked',
      `${o.excluded + o.unsupported} (excluded namespaces ${o.excluded}, not workloads ${o.unsupported})`,
    ],
    [
      'images',
      `${summary.images.references} references, ${summary.images.distinct} distinct, ${summary.images.verifications} verifications`,
    ],
  ];
  const width = Math.max(...totals.map(([label]) => label.length));
  for (const [label, value] of totals) lines.push(`  ${label.padEnd(width)}  ${value}`);
  lines.push('');
  lines.push(
    table(
      ['NAMESPACE', 'ADMITTED', 'WARNINGS', 'DENIED', 'EXCLUDED', 'NOT WORKLOADS'],
      summary.namespaces.map((n) => [
        n.namespace === '' ? '(cluster)' : n.namespace,
        String(n.allow),
        String(n.warn),
        String(n.deny),
        String(n.excluded),
        String(n.unsupported),
      ]),
    ),
  );
  const policyRows = summary.policies.map((p) => [
    p.policy,
    p.mode,
    String(p.pass),
    String(p.warn),
    String(p.deny),
  ]);
  const np = summary.noPolicy;
  if (np.allow + np.warn + np.deny > 0)
    policyRows.push(['(no policy)', 'noMatchingPolicy', String(np.allow), String(np.warn), String(np.deny)]);
  if (policyRows.length > 0) lines.push(table(['POLICY', 'MODE', 'PASSED', 'WARNED', 'DENIED'], policyRows));

  const denials = report.workloads
    .filter((w) => w.outcome === 'deny')
    .map((w) => ({ w, place: `${w.namespace ?? ''}\u0000${w.kind}\u0000${w.name}` }))
    .sort((a, b) => (a.place < b.place ? -1 : a.place > b.place ? 1 : 0))
    .flatMap(({ w }) => {
      const object = `${w.kind} ${w.namespace !== undefined ? `${w.namespace}/` : ''}${w.name}`;
      // One row per denied image (an image in two containers is one row; the JSON has each field).
      const images = new Map(w.images.filter((i) => i.verdict === 'deny').map((i) => [i.image, i]));
      if (images.size === 0) return [[object, '', w.response.status?.message ?? 'denied']];
      return [...images.values()].map((i) => [object, i.image, i.code ?? 'DENIED']);
    });
  if (denials.length > 0) {
    lines.push(`Would be denied (${o.deny} objects):`);
    lines.push(table(['OBJECT', 'IMAGE', 'REASON'], denials.slice(0, MAX_DENIALS_SHOWN)));
    if (denials.length > MAX_DENIALS_SHOWN) {
      lines.push(`… and ${denials.length - MAX_DENIALS_SHOWN} more: see --json or --html REPORT`);
      lines.push('');
    }
  }
  if (context.html !== undefined) lines.push(`report: ${context.html}`, '');
  return `${lines.join('\n')}`;
}
