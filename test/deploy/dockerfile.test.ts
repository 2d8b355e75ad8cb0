/**
 * The Dockerfile's facts, checked against the code without Docker (which the build machine lacks):
 * the Node.js major and Debian release of the build and runtime stages agree with each other (the
 * native better-sqlite3 addon is compiled in one and loaded in the other), with the Lambda runtime
 * and with `engines`; the runtime stage gets the bundle, the entry, package.json and the production
 * node_modules; the user, the command and the port are the Deployment's. The build itself is
 * emulated in image.int.test.ts.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { FUNCTION_RUNTIME } from '../../cdk/signet-function';
import { parseDockerfile, type Stage } from './dockerfile';

const ROOT = path.resolve(__dirname, '..', '..');
const stages = parseDockerfile(readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8'));
const packageJson = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
  version: string;
  bin: Record<string, string>;
  engines: { node: string };
  scripts: Record<string, string>;
};

const runtime = stages[stages.length - 1] as Stage;
const byName = (name: string): Stage => {
  const stage = stages.find((s) => s.name === name);
  if (stage === undefined) throw new Error(`Dockerfile: no stage named ${name}`);
  return stage;
};

/** Debian release numbers of the codenames the official Node.js images use. */
const DEBIAN_RELEASE: Readonly<Record<string, string>> = { bullseye: '11', bookworm: '12', trixie: '13' };

/** Node.js major and Debian release of an image reference, for the two image families used. */
function platformOf(image: string): { node: string; debian: string } {
  const official = /^node:(\d+)-(bullseye|bookworm|trixie)(?:@sha256:[0-9a-f]{64})?$/.exec(image);
  if (official !== null)
    return { node: official[1] as string, debian: DEBIAN_RELEASE[official[2] as string] as string };
  const distroless =
    /^gcr\.io\/distroless\/nodejs(\d+)-debian(\d+)(?::[a-z0-9-]+)?(?:@sha256:[0-9a-f]{64})?$/.exec(image);
  if (distroless !== null) return { node: distroless[1] as string, debian: distroless[2] as string };
  throw new Error(
    `${image}: neither node:<major>-<debian codename> nor gcr.io/distroless/nodejs<major>-debian<N>`,
  );
}

/** The argument list of a JSON-form (exec form) instruction. */
function execForm(stage: Stage, instruction: string): string[] {
  const found = stage.instructions.filter((i) => i.keyword === instruction);
  const last = found[found.length - 1];
  if (last === undefined) throw new Error(`Dockerfile: the runtime stage has no ${instruction}`);
  const parsed = JSON.parse(last.args) as unknown;
  if (!Array.isArray(parsed) || !parsed.every((a) => typeof a === 'string')) {
    throw new Error(`Dockerfile: ${instruction} must be in exec (JSON) form`);
  }
  return parsed as string[];
}

/** True when `version` (x.y.z) satisfies `range`; only `>=x[.y[.z]]` ranges are understood. */
function satisfies(version: string, range: string): boolean {
  const match = /^>=\s*(\d+)(?:\.(\d+))?(?:\.(\d+))?$/.exec(range.trim());
  if (match === null) throw new Error(`engines.node "${range}": only ">=x.y.z" ranges are understood here`);
  const want = [match[1], match[2], match[3]].map((n) => Number(n ?? 0));
  const have = version.split('.').map(Number);
  for (let i = 0; i < 3; i++) {
    if ((have[i] ?? 0) !== want[i]) return (have[i] ?? 0) > (want[i] as number);
  }
  return true;
}

interface DeploymentView {
  spec: {
    template: {
      spec: {
        securityContext: { runAsUser: number; runAsGroup: number };
        containers: { args: string[]; ports: { containerPort: number }[] }[];
      };
    };
  };
}
const deployment = parseAllDocuments(
  readFileSync(path.join(ROOT, 'deploy', 'kubernetes', 'deployment.yaml'), 'utf8'),
)[0]?.toJS() as DeploymentView;
const podSpec = deployment.spec.template.spec;

describe('the Dockerfile', () => {
  const build = byName('build');
  const deps = byName('deps');

  it('builds and runs on the same Node.js major and Debian release (glibc), so the native addon loads', () => {
    const runtimePlatform = platformOf(runtime.from);
    expect(runtime.from).toMatch(/^gcr\.io\/distroless\/nodejs\d+-debian\d+:nonroot/);
    expect(platformOf(build.from)).toEqual(runtimePlatform);
    expect(platformOf(deps.from)).toEqual(runtimePlatform);
  });

  it("uses the Lambda runtime's Node.js major, which package.json's engines allow", () => {
    const major = platformOf(runtime.from).node;
    expect(FUNCTION_RUNTIME.name).toBe(`nodejs${major}.x`);
    expect(satisfies(`${major}.0.0`, packageJson.engines.node)).toBe(true);
  });

  it('bundles with `npm run build` in the build stage, after `npm ci`', () => {
    const runs = build.instructions.filter((i) => i.keyword === 'RUN').map((i) => i.args);
    expect(runs[0]).toMatch(/^npm ci\b/);
    expect(runs[runs.length - 1]).toBe('npm run build');
    expect(packageJson.scripts.build).toBe('node scripts/build.mjs');
  });

  it('installs the production dependencies with `npm ci --omit=dev`, better-sqlite3 built there', () => {
    const run = deps.instructions
      .filter((i) => i.keyword === 'RUN')
      .map((i) => i.args)
      .join(' && ');
    expect(run).toMatch(/\bnpm ci --omit=dev\b/);
    // Without install scripts the addon would be missing: then it must be rebuilt explicitly.
    if (run.includes('--ignore-scripts')) expect(run).toMatch(/\bnpm rebuild better-sqlite3\b/);
  });

  it('gives the runtime only the bundle, the entry, package.json and the production node_modules', () => {
    const copies = runtime.instructions.filter((i) => i.keyword === 'COPY').map((i) => i.args);
    expect(copies).toEqual([
      '--from=deps /app/node_modules ./node_modules',
      '--from=build /src/dist ./dist',
      'bin ./bin',
      'package.json ./',
    ]);
    expect(runtime.instructions.find((i) => i.keyword === 'WORKDIR')?.args).toBe('/app');
  });

  it("starts bin/signet.js (package.json's bin) with the image's node", () => {
    expect(execForm(runtime, 'ENTRYPOINT')).toEqual(['/nodejs/bin/node', `/app/${packageJson.bin.signet}`]);
    expect(packageJson.bin.signet).toBe('bin/signet.js');
  });

  it("runs as the Deployment's user and group, with the Deployment's command, on its port", () => {
    const user = runtime.instructions.filter((i) => i.keyword === 'USER').pop()?.args;
    expect(user).toBe(`${podSpec.securityContext.runAsUser}:${podSpec.securityContext.runAsGroup}`);
    const [container] = podSpec.containers;
    expect(execForm(runtime, 'CMD')).toEqual(container?.args);
    expect(runtime.instructions.find((i) => i.keyword === 'EXPOSE')?.args).toBe(
      String(container?.ports[0]?.containerPort),
    );
  });
});

describe('.dockerignore', () => {
  const entries = readFileSync(path.join(ROOT, '.dockerignore'), 'utf8')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
  const ignored = (file: string): boolean =>
    entries.some((e) =>
      e.startsWith('*') ? file.endsWith(e.slice(1)) : file === e || file.startsWith(`${e}/`),
    );

  it("keeps the host's node_modules and dist out of the build context", () => {
    expect(ignored('node_modules/better-sqlite3/build/Release/better_sqlite3.node')).toBe(true);
    expect(ignored('dist/signet.js')).toBe(true);
    expect(ignored('.git/HEAD')).toBe(true);
  });

  it('lets in everything the Dockerfile copies from the context', () => {
    const sources = stages.flatMap((stage) =>
      stage.instructions
        .filter((i) => i.keyword === 'COPY' && !i.args.startsWith('--from='))
        .flatMap((i) => i.args.split(/\s+/).slice(0, -1)),
    );
    expect(sources).toEqual(expect.arrayContaining(['package-lock.json', 'cli', 'lib', 'bin']));
    for (const source of sources)
      expect({ source, ignored: ignored(source) }).toEqual({ source, ignored: false });
  });
});
