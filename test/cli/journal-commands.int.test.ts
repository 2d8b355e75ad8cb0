/**
 * `signet failures` and `signet replay --local` (cli/journal-commands.ts, through `main` in
 * process) on dead letters the local service made for real: a real registry, the real service
 * (`startService`, config file in a temp dir), and push events for images the registry does not
 * hold yet. Such a push is retried and then dead-lettered as MANIFEST_UNKNOWN (permanent); once
 * the image is pushed, a replay signs it, whether the service runs (its worker signs what the
 * command requeued) or not (the command signs it itself).
 *
 * The brief suggested removing a rule's key file after start; that cannot fail a push: the
 * service reads every rule's key at preflight and keeps it, so a missing image stands in as the
 * permanent failure an operator fixes before replaying.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { main, reportError } from '../../cli/main';
import { startService, type RunningService } from '../../cli/serve';
import { loadConfigFile } from '../../lib/config/load';
import { silentLogger } from '../../lib/core/logger';
import { makeImage, skopeoCopy } from '../support/images';
import { startTestRegistry, type TestRegistry } from '../support/registry';

jest.setTimeout(120_000);

const EVENTS_TOKEN = 'events-token-6d2b9f4e1a8c3e7b0d5f';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- JSON printed by the CLI
type Json = any;

let dir: string;
let configFile: string;
let registry: TestRegistry;
let running: RunningService | undefined;

class Capture extends Writable {
  text = '';
  override _write(chunk: Buffer, _encoding: string, done: () => void): void {
    this.text += chunk.toString();
    done();
  }
}

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

async function failures(): Promise<Json[]> {
  const { code, out } = await signet('failures', '--json');
  expect(code).toBe(0);
  return JSON.parse(out) as Json[];
}

async function waitUntil(
  what: string,
  done: () => Promise<boolean> | boolean,
  timeoutMs = 30_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function signatureLayers(repository: string, digest: string): Promise<number> {
  const res = await fetch(`${registry.url}/v2/${repository}/manifests/${digest.replace(':', '-')}.sig`, {
    headers: { accept: 'application/vnd.oci.image.manifest.v1+json' },
  });
  if (res.status === 404) return 0;
  return ((await res.json()) as { layers: unknown[] }).layers.length;
}

/** An image built locally and not pushed yet: its layout directory and digest. */
async function unpushedImage(name: string): Promise<{ layout: string; digest: string }> {
  const layout = join(dir, `layout-${name}`);
  return { layout, digest: await makeImage(layout) };
}

/** Tells the running service that `repository:v1@digest` was pushed to the registry. */
async function announce(repository: string, digest: string): Promise<string> {
  const res = await fetch(`${running!.url}/events/distribution`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${EVENTS_TOKEN}` },
    body: JSON.stringify({
      events: [
        {
          action: 'push',
          target: {
            mediaType: 'application/vnd.oci.image.manifest.v1+json',
            digest,
            repository,
            tag: 'v1',
            url: `${registry.url}/v2/${repository}/manifests/${digest}`,
          },
          request: { host: registry.host },
        },
      ],
    }),
  });
  expect(res.status).toBe(202);
  const body = (await res.json()) as { accepted: { id: string }[] };
  return body.accepted[0]!.id;
}

async function start(): Promise<RunningService> {
  running = await startService(await loadConfigFile(configFile), { logger: silentLogger, port: 0 });
  return running;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'signet-journal-commands-'));
  registry = await startTestRegistry();
  configFile = join(dir, 'signet.yaml');
  await writeFile(
    configFile,
    `
registries:
  - host: ${registry.host}
    insecure: true
witnesses:
  - name: release
    key: file://keys/release.pem
signingRules:
  - name: team-a
    namespaces: [team-a]
    witness: release
    algorithm: ECDSA_SHA_256
    signatureType: simple
server:
  port: 0
  eventsToken: ${EVENTS_TOKEN}
journal:
  retryBaseSeconds: 0.05
  retryMaxSeconds: 0.1
`,
  );
  await start();
});

afterAll(async () => {
  await running?.stop();
  await registry?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('when a push names an image the registry does not hold', () => {
  let image: { layout: string; digest: string };
  let id: string;

  beforeAll(async () => {
    image = await unpushedImage('first');
    id = await announce('team-a/first', image.digest);
    await waitUntil('the push is dead-lettered', () => running!.journal.depth().deadLetters === 1);
  });

  it('lists the dead letter with its code and image (signet failures --json)', async () => {
    expect(await failures()).toEqual([
      expect.objectContaining({
        id,
        code: 'MANIFEST_UNKNOWN',
        permanent: true,
        attempts: 3,
        image: `${registry.host}/team-a/first:v1@${image.digest}`,
      }),
    ]);
  });

  it('lists it as a table (signet failures)', async () => {
    const { code, out } = await signet('failures');
    expect(code).toBe(0);
    const [header, row] = out.split('\n');
    expect(header).toMatch(/^ID\s+FAILED AT\s+CODE\s+ATTEMPTS\s+IMAGE$/);
    expect(row).toContain(id);
    expect(row).toContain('MANIFEST_UNKNOWN');
    expect(row).toContain(`${registry.host}/team-a/first:v1@${image.digest}`);
  });

  it('lists only the asked one with --id', async () => {
    const { out } = await signet('failures', '--json', '--id', id);
    expect((JSON.parse(out) as Json[]).map((f) => f.id)).toEqual([id]);
    const none = await signet('failures', '--json', '--id', 'no-such-id');
    expect(JSON.parse(none.out)).toEqual([]);
  });

  it('exits 2 on replay --local of an unknown --id and moves nothing', async () => {
    const { code, err } = await signet('replay', '--local', '--id', id, '--id', 'no-such-id');
    expect(code).toBe(2);
    expect(err).toContain('no-such-id');
    expect((await failures()).map((f) => f.id)).toEqual([id]);
    expect(running!.journal.depth()).toMatchObject({ pending: 0, running: 0, deadLetters: 1 });
  });

  it('requeues into the running service once the image is there, and its worker signs it', async () => {
    await skopeoCopy(image.layout, `${registry.host}/team-a/first:v1`);
    const { code, out } = await signet('replay', '--local');
    expect(code).toBe(0);
    expect(JSON.parse(out)).toMatchObject({ mode: 'requeued', requeued: [id] });
    // The worker finds requeued entries at its next look at the journal (it polls).
    await waitUntil(
      'the running worker signs it',
      async () => (await signatureLayers('team-a/first', image.digest)) === 1,
    );
    expect(await failures()).toEqual([]);
  });
});

describe('when the service is stopped and a dead letter is replayed by id', () => {
  let image: { layout: string; digest: string };
  let other: { layout: string; digest: string };
  let id: string;
  let otherId: string;

  beforeAll(async () => {
    image = await unpushedImage('second');
    other = await unpushedImage('third');
    id = await announce('team-a/second', image.digest);
    otherId = await announce('team-a/third', other.digest);
    await waitUntil('both pushes are dead-lettered', () => running!.journal.depth().deadLetters === 2);
    await running!.stop();
    running = undefined;
  });

  it('signs it in the command itself and leaves the others dead', async () => {
    await skopeoCopy(image.layout, `${registry.host}/team-a/second:v1`);
    const { code, out } = await signet('replay', '--local', '--id', id);
    expect(code).toBe(0);
    expect(JSON.parse(out)).toEqual({ mode: 'replayed', requeued: [id], signed: [id], failed: [] });
    expect(await signatureLayers('team-a/second', image.digest)).toBe(1);
    expect((await failures()).map((f) => f.id)).toEqual([otherId]);
  });

  it('reports a replay that fails again with exit 1 and the new failure', async () => {
    // The third image is still missing: three attempts, dead again.
    const { code, out } = await signet('replay', '--local', '--id', otherId);
    expect(code).toBe(1);
    expect(JSON.parse(out)).toMatchObject({
      mode: 'replayed',
      signed: [],
      failed: [expect.objectContaining({ id: otherId, code: 'MANIFEST_UNKNOWN' })],
    });
  });

  it('empties the list once every image is there', async () => {
    await skopeoCopy(other.layout, `${registry.host}/team-a/third:v1`);
    const { code } = await signet('replay', '--local');
    expect(code).toBe(0);
    expect(await failures()).toEqual([]);
    expect(await signatureLayers('team-a/third', other.digest)).toBe(1);
  });
});
