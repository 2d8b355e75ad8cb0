/**
 * `signet audit` end to end: a 1,000-object List in `kubectl get -o json` shape
 * (test/fixtures/kubernetes-lists/generate.ts) whose images are on a real registry (signed by a
 * local witness with `signet sign`, pushed unsigned, or never pushed) and on registries no policy
 * covers. The audit (through `main`, in process) must answer every object exactly as `/admission` of
 * a running service (`startService`) answers the AdmissionReview the apiserver would send for it,
 * resolve each tag once per set of policies however many workloads run it, and write an HTML report
 * that Chromium renders with its counts, chart and denials.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { stringify } from 'yaml';
import type { AuditReport } from '../../lib/admission/audit';
import type { AdmissionResponse } from '../../lib/admission/controller';
import { loadConfigFile } from '../../lib/config/load';
import { silentLogger } from '../../lib/core/logger';
import { main, reportError } from '../../cli/main';
import { startService, type RunningService } from '../../cli/serve';
import { fixture, type FixtureName } from '../admission/fixtures';
import { DEFAULT_POOLS, LIST_FIXTURE_HOST, generateList } from '../fixtures/kubernetes-lists/generate';
import { browserIt, launchBrowser, saveScreenshot } from '../support/browser';
import { makeImage, skopeoCopy } from '../support/images';
import { startTestRegistry, type TestRegistry } from '../support/registry';
import { startProxy, type RecordingProxy } from '../verification/environment';

jest.setTimeout(300_000);

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- Kubernetes objects and reviews as JSON
type Json = any;

class Capture extends Writable {
  text = '';
  override _write(chunk: Buffer, _encoding: string, done: () => void): void {
    this.text += chunk.toString();
    done();
  }
}

let dir: string;
let configFile: string;
let registry: TestRegistry;
let proxy: RecordingProxy;
let list: Json;

/** Runs `signet <args> --config <file>` in process; the exit code as `bin/signet.js` would give it. */
async function signet(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out = new Capture();
  const err = new Capture();
  const code = await main(
    [...args, '--config', configFile, '--log-level', 'silent'],
    out as never,
    err as never,
  ).catch((error: unknown) => reportError(error, err as never));
  return { code, out: out.text, err: err.text };
}

/** Images the generator's pools name, by what the registry holds for them. */
const SIGNED = ['team-a/web:v1', 'team-a/api:v2', 'team-a/worker:v3', 'team-a/migrate:v1', 'tools/proxy:v1'];
const UNSIGNED = ['team-a/unsigned:v1', 'team-b/preview:v7'];
// team-a/ledger:v4 is never pushed: IMAGE_NOT_FOUND.

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'signet-audit-'));
  registry = await startTestRegistry();
  proxy = await startProxy(registry.url);
  configFile = join(dir, 'signet.yaml');
  await writeFile(
    configFile,
    `
registries:
  - host: ${proxy.host}
    insecure: true
witnesses:
  - name: release
    key: file://keys/release.pem
signingRules:
  - name: backfill
    repositories: ["team-a/*", "tools/*"]
    witness: release
    algorithm: ECDSA_SHA_256
    signatureType: simple
    trigger: manual
policies:
  - name: production
    enabled: true
    namespaces: [production, payments]
    images: ["${proxy.host}/team-a/**", "${proxy.host}/tools/**"]
    attestors:
      - witnesses: [release]
    mutateDigest: true
  - name: staging
    enabled: true
    mode: audit
    namespaces: [staging]
    images: ["${proxy.host}/**"]
    attestors:
      - witnesses: [release]
admission:
  excludeNamespaces: [kube-system]
server:
  port: 0
`,
  );
  expect((await signet('keys', 'generate')).code).toBe(0);
  let seed = 0;
  for (const image of [...SIGNED, ...UNSIGNED]) {
    const layout = join(dir, `layout-${seed}`);
    await makeImage(layout, { seed: `audit-${seed++}` });
    await skopeoCopy(layout, `${registry.host}/${image}`);
  }
  for (const image of SIGNED) expect((await signet('sign', `${proxy.host}/${image}`, '--json')).code).toBe(0);
  list = JSON.parse(
    JSON.stringify(generateList({ count: 1000, seed: 7, pools: DEFAULT_POOLS }))
      .split(LIST_FIXTURE_HOST)
      .join(proxy.host),
  );
  await writeFile(join(dir, 'list.json'), JSON.stringify(list));
});

afterAll(async () => {
  await proxy?.close();
  await registry?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('when a 1,000-object List is audited', () => {
  let report: AuditReport;
  let code: number;
  let heads: Map<string, number>;
  const reportFile = (): string => join(dir, 'audit.html');

  beforeAll(async () => {
    const before = proxy.requests.length;
    const run = await signet('audit', join(dir, 'list.json'), '--json', '--html', reportFile());
    code = run.code;
    expect(run.err).toBe('');
    report = JSON.parse(run.out) as AuditReport;
    heads = new Map();
    for (const r of proxy.requests.slice(before)) {
      if (r.method !== 'HEAD') continue;
      const m = /^\/v2\/(.+)\/manifests\/([^/]+)$/.exec(r.path);
      if (m !== null) heads.set(`${m[1]}:${m[2]}`, (heads.get(`${m[1]}:${m[2]}`) ?? 0) + 1);
    }
  });

  it('exits 1 (some would be denied) and decides every object', () => {
    expect(code).toBe(1);
    expect(report.workloads).toHaveLength(1000);
    const { outcomes } = report.summary;
    // The List covers every outcome: admitted, audit warnings, denials, an excluded namespace.
    for (const outcome of ['allow', 'warn', 'deny', 'excluded'] as const)
      expect(outcomes[outcome]).toBeGreaterThan(0);
    expect(report.summary.denialReasons.map((r) => r.code).sort()).toEqual([
      'IMAGE_NOT_FOUND',
      'NO_MATCHING_POLICY',
      'NO_SIGNATURES',
    ]);
  });

  it('answers each object exactly as POST /admission of a running service does', async () => {
    const running: RunningService = await startService(await loadConfigFile(configFile), {
      logger: silentLogger,
      port: 0,
    });
    try {
      const FIXTURES: Record<string, FixtureName> = {
        Pod: 'pod-create',
        Deployment: 'deployment-create',
        StatefulSet: 'statefulset-create',
        DaemonSet: 'daemonset-create',
        Job: 'job-create',
        CronJob: 'cronjob-create',
      };
      const mismatches: unknown[] = [];
      let next = 0;
      const worker = async (): Promise<void> => {
        while (next < list.items.length) {
          const index = next++;
          const object = list.items[index];
          // The review as the apiserver sends it for this kind, around this object.
          const review = fixture(FIXTURES[object.kind] as FixtureName);
          review.request.uid = `review-${index}`;
          review.request.name = object.metadata.name;
          review.request.namespace = object.metadata.namespace;
          review.request.object = object;
          const res = await fetch(`${running.url}/admission`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify(review),
          });
          expect(res.status).toBe(200);
          const answered = ((await res.json()) as { response: AdmissionResponse }).response;
          const audited = report.workloads[index]?.response;
          if (JSON.stringify({ ...answered, uid: '' }) !== JSON.stringify({ ...audited, uid: '' }))
            mismatches.push({
              index,
              object: `${object.kind} ${object.metadata.namespace}/${object.metadata.name}`,
              answered,
              audited,
            });
        }
      };
      await Promise.all(Array.from({ length: 8 }, worker));
      expect(mismatches).toEqual([]);
    } finally {
      await running.stop();
    }
  });

  it('resolves each tag once per set of policies selecting it, however many workloads run it', () => {
    const sets = new Map<string, Set<string>>();
    const uses = new Map<string, number>();
    for (const workload of report.workloads) {
      for (const image of workload.images) {
        if (!image.image.startsWith(`${proxy.host}/`)) continue;
        const name = image.image.slice(proxy.host.length + 1);
        uses.set(name, (uses.get(name) ?? 0) + 1);
        const policies = image.policies.map((p) => p.policy).join(',');
        sets.set(name, (sets.get(name) ?? new Set()).add(policies));
      }
    }
    expect(uses.get('team-a/web:v1')).toBeGreaterThan(50);
    for (const [name, policySets] of sets) expect([name, heads.get(name)]).toEqual([name, policySets.size]);
    expect(report.summary.images.verifications).toBeLessThan(30);
  });

  it('reads the same List as YAML (kubectl get -o yaml)', async () => {
    const part = { ...list, items: list.items.slice(0, 40) };
    await writeFile(join(dir, 'part.json'), JSON.stringify(part));
    await writeFile(join(dir, 'part.yaml'), stringify(part));
    const fromJson = JSON.parse((await signet('audit', join(dir, 'part.json'), '--json')).out) as AuditReport;
    const fromYaml = JSON.parse((await signet('audit', join(dir, 'part.yaml'), '--json')).out) as AuditReport;
    expect(fromYaml.summary).toEqual(fromJson.summary);
  });

  it('prints a summary per namespace and policy and the denials on a terminal', async () => {
    const out = new Capture();
    Object.assign(out, { isTTY: true });
    const exit = await main(
      ['audit', join(dir, 'list.json'), '--config', configFile, '--log-level', 'silent'],
      out as never,
    );
    expect(exit).toBe(1);
    expect(out.text).toContain('Audit of 1000 objects');
    expect(out.text).toMatch(/^NAMESPACE\s+ADMITTED\s+WARNINGS\s+DENIED\s+EXCLUDED\s+NOT WORKLOADS$/m);
    expect(out.text).toMatch(/^production\s+enforce\s+\d+\s+0\s+\d+$/m);
    // Denials by namespace, the first ones on the terminal, all of them in --json and --html.
    expect(out.text).toMatch(
      /^Pod ingress-nginx\/\S+\s+registry\.k8s\.io\/ingress-nginx\/controller:v1\.11\.3\s+NO_MATCHING_POLICY$/m,
    );
    expect(out.text).toMatch(/^… and \d+ more: see --json or --html REPORT$/m);
  });

  browserIt()('writes an HTML report that Chromium renders with its counts, chart and denials', async () => {
    const browser = await launchBrowser();
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      const requests: string[] = [];
      page.on('request', (request) => requests.push(request.url()));
      await page.goto(`file://${reportFile()}`);
      const png = await saveScreenshot(page, 'audit-report');
      expect((await readFile(png)).subarray(1, 4).toString()).toBe('PNG');
      await page.locator('#denials').scrollIntoViewIfNeeded();
      await saveScreenshot(page, 'audit-report-denials');
      // Nothing was loaded but the file itself.
      expect(requests).toEqual([`file://${reportFile()}`]);
      const { outcomes } = report.summary;
      expect(await page.textContent('#count-deny .n')).toBe(String(outcomes.deny));
      expect(await page.textContent('#count-allow .n')).toBe(String(outcomes.allow));
      expect(await page.locator('svg#namespace-chart rect').count()).toBeGreaterThan(5);
      expect(await page.locator('#denials tbody tr').count()).toBeGreaterThanOrEqual(outcomes.deny);
      const ledger = page.locator('#denials tbody tr', { hasText: `${proxy.host}/team-a/ledger:v4` }).first();
      expect(await ledger.textContent()).toContain('IMAGE_NOT_FOUND');
      const unsigned = page
        .locator('#denials tbody tr', { hasText: `${proxy.host}/team-a/unsigned:v1` })
        .first();
      expect(await unsigned.textContent()).toContain('NO_SIGNATURES');
      expect(await page.locator('#enforce-denials tbody tr').count()).toBeGreaterThan(0);
    } finally {
      await browser.close();
    }
  });
});

describe('when the input is not a Kubernetes List', () => {
  it.each([
    ['a file that does not exist', 'missing.json', undefined],
    ['text that is neither JSON nor YAML', 'bad.txt', '{"kind": "List", items: [}'],
    ['a List whose items are not objects', 'items.json', '{"kind": "List", "items": [1, {"kind": "Pod"}]}'],
  ])('exits 2 for %s', async (_, name, content) => {
    if (content !== undefined) await writeFile(join(dir, name), content);
    const { code, err } = await signet('audit', join(dir, name));
    expect(code).toBe(2);
    expect(err).toMatch(/^signet: REQUEST_INVALID: /);
  });
});
