/**
 * The HTML of Signet's pages (cli/ui): every value from a cluster or a registry is escaped, nothing
 * is loaded from anywhere (no script, no external URL), and the parts a reader looks for are there.
 * Rendering in a real browser is test/cli/audit.int.test.ts's and status-page.int.test.ts's job.
 */
import { auditWorkloads } from '../../../lib/admission/audit';
import { KeyRing } from '../../../lib/keys/keyring';
import { ImageVerifier } from '../../../lib/verification/verifier';
import { renderAuditReport } from '../../../cli/ui/audit-report';
import { minuteColumns, stackedBars } from '../../../cli/ui/charts';
import { escapeHtml, html } from '../../../cli/ui/html';
import { StatusRecorder } from '../../../cli/ui/recorder';
import { renderStatusPage } from '../../../cli/ui/status-page';
import { MemoryRegistries, policy, verificationConfig } from '../../verification/helpers';

const HOSTILE = '<img src=x onerror="alert(1)">';

/** Only the SVG namespace may appear as a URL: it names, it does not load. */
function externalUrls(page: string): string[] {
  return [...page.matchAll(/(?:https?:)?\/\/[^\s"'<>)]+/g)]
    .map((m) => m[0])
    .filter((url) => url !== 'http://www.w3.org/2000/svg');
}

describe('html', () => {
  it('escapes text and attribute values, and keeps markup it built', () => {
    expect(escapeHtml(`a&b<c>"d"'e'`)).toBe('a&amp;b&lt;c&gt;&quot;d&quot;&#39;e&#39;');
    const inner = html`<b>${HOSTILE}</b>`;
    expect(html`<p title="${HOSTILE}">${inner}${[1, ' & ', undefined, false, null]}</p>`.value).toBe(
      '<p title="&lt;img src=x onerror=&quot;alert(1)&quot;&gt;"><b>&lt;img src=x onerror=&quot;alert(1)&quot;&gt;</b>1 &amp; </p>',
    );
  });
});

describe('charts', () => {
  it('draws a bar per row with its total, and a titled SVG', () => {
    const svg = stackedBars(
      [
        { label: 'production', segments: [{ name: 'admitted', value: 3, color: '#0f0' }] },
        { label: HOSTILE, segments: [{ name: 'denied', value: 1, color: '#f00' }] },
      ],
      { title: 'Workloads', id: 'chart' },
    ).value;
    expect(svg).toMatch(/^<svg[^>]* id="chart"/);
    expect(svg).toContain('<title>Workloads</title>');
    expect(svg).not.toContain('<img');
    expect(svg.match(/<rect\b/g)).toHaveLength(4); // two bars, two legend keys
  });

  it('draws one column per minute, quiet minutes as a baseline', () => {
    const svg = minuteColumns([0, 2, 0, 5], { title: 'signed', color: '#0f0' }).value;
    expect(svg.match(/<rect\b/g)).toHaveLength(4);
    expect(svg).toContain('aria-label="signed: 7 in the last hour"');
  });
});

describe('the audit report', () => {
  let page: string;

  beforeAll(async () => {
    // Images on a registry no policy covers: decided without any registry, denied by noMatchingPolicy.
    const verifier = new ImageVerifier({
      config: verificationConfig(
        [],
        [policy({ name: 'team-a', images: ['registry.example.com/team-a/**'], attestors: [] })],
      ),
      registries: new MemoryRegistries(),
      keys: new KeyRing({ witnesses: [], baseDir: '/nonexistent' }),
    });
    const pod = (name: string, namespace: string, image: string): Record<string, unknown> => ({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, namespace },
      spec: { containers: [{ name: 'c', image }] },
    });
    const report = await auditWorkloads(
      [
        pod(HOSTILE, 'default', 'quay.io/evil/<script>:1'),
        pod('tools', 'default', 'docker.io/library/busybox:1.36'),
      ],
      verifier,
    );
    page = renderAuditReport(report, { config: 'signet.yaml', input: `list-${HOSTILE}.json` });
  });

  it('loads nothing and runs nothing', () => {
    expect(page).not.toMatch(/<script/i);
    expect(page).not.toMatch(/<img/i);
    expect(page).not.toMatch(/<link/i);
    expect(externalUrls(page)).toEqual([]);
    expect(page).toContain('http-equiv="Content-Security-Policy"');
  });

  it('lists each denial with its image and reason, escaped', () => {
    expect(page).toContain('&lt;img src=x onerror=&quot;alert(1)&quot;&gt;');
    expect(page).toContain('quay.io/evil/&lt;script&gt;:1');
    expect(page).toContain('NO_MATCHING_POLICY');
    expect(page).toContain('id="namespace-chart"');
    expect(page).toMatch(/id="count-deny"[^]*?<div class="n">\s*2\s*<\/div>/);
  });
});

describe('the status page', () => {
  it('renders empty tables with what they would hold, and the hour as charts', async () => {
    const page = await renderStatusPage(new StatusRecorder({ clock: () => 0 }), { now: 0, version: '0.1.0' });
    expect(page).not.toMatch(/<script/i);
    expect(externalUrls(page)).toEqual([]);
    for (const name of ['pushes', 'signed', 'failed', 'admitted', 'denied'])
      expect(page).toContain(`id="chart-${name}"`);
    expect(page).toContain('no admission denied since the service started');
    expect(page).toContain('<meta http-equiv="refresh" content="30" />');
  });
});
