/**
 * The Kubernetes manifests under deploy/kubernetes: each validates against the Kubernetes OpenAPI
 * schemas of the oldest and newest release it supports (and cert-manager's CRD schemas), with
 * unknown fields rejected as `kubectl apply` rejects them, and webhook paths checked as the
 * apiserver checks them; and they agree with the code: the ConfigMap's signet.yaml loads, its
 * port, paths, secrets and timeouts match the Deployment, the Service and the webhooks, the probes
 * hit routes the service answers, the webhooks' path (secret first, from the Secret the Deployment
 * reads it from) is one Signet's access check and admission route accept, and the webhook rules
 * send Signet exactly the kinds lib/admission/review.ts reads images from.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import * as path from 'node:path';
import Ajv from 'ajv';
import { parseAllDocuments } from 'yaml';
import { AdmissionController } from '../../lib/admission/controller';
import { checkCluster } from '../../lib/admission/requests';
import { extractImages, parseAdmissionReview } from '../../lib/admission/review';
import { checkConfig } from '../../lib/config/check';
import { parseConfig } from '../../lib/config/load';
import type { SignetConfig } from '../../lib/config/types';
import { silentLogger, type Logger } from '../../lib/core/logger';
import { checkVerificationAccess, secretDigest, type VerificationAccess } from '../../lib/http/auth';
import { handleRequest, type HttpResponse, type SurfaceDeps } from '../../lib/http/surface';
import { KeyRing } from '../../lib/keys/keyring';
import { PolicySet } from '../../lib/verification/policies';
import { ImageVerifier } from '../../lib/verification/verifier';
import { fixture, type FixtureName } from '../admission/fixtures';
import { capturingLogger, httpRequest } from '../support/http-surface';
import { MemoryRegistries } from '../verification/helpers';

const ROOT = path.resolve(__dirname, '..', '..');
const DEPLOY = path.join(ROOT, 'deploy', 'kubernetes');
const FIXTURES = path.join(ROOT, 'test', 'fixtures', 'kubernetes');
const DOCS = path.join(ROOT, 'docs', 'kubernetes.md');

// ---------------------------------------------------------------------------------------------
// The manifests

/** The parts of a Kubernetes object these tests read; the schemas vouch for the shapes. */
interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  [field: string]: unknown;
}

interface KeyToPath {
  key: string;
  path: string;
}
interface ProjectedSource {
  configMap?: { name: string; items: KeyToPath[] };
  secret?: { name: string; items: KeyToPath[] };
}
interface Volume {
  name: string;
  projected?: { defaultMode?: number; sources: ProjectedSource[] };
  emptyDir?: { sizeLimit?: string; medium?: string };
}
interface Probe {
  httpGet: { path: string; port: string | number; scheme: string };
}
interface Container {
  name: string;
  image: string;
  args?: string[];
  ports: { name: string; containerPort: number }[];
  env: { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }[];
  resources: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext: {
    allowPrivilegeEscalation?: boolean;
    readOnlyRootFilesystem?: boolean;
    runAsNonRoot?: boolean;
    capabilities?: { drop?: string[] };
    seccompProfile?: { type: string };
  };
  startupProbe?: Probe;
  livenessProbe: Probe;
  readinessProbe: Probe;
  lifecycle: { preStop: { sleep?: { seconds: number } } };
  volumeMounts: { name: string; mountPath: string; readOnly?: boolean }[];
}
interface LabelSelector {
  matchLabels?: Record<string, string>;
}
interface PodSpec {
  serviceAccountName: string;
  automountServiceAccountToken?: boolean;
  terminationGracePeriodSeconds: number;
  securityContext: {
    runAsNonRoot?: boolean;
    runAsUser?: number;
    runAsGroup?: number;
    fsGroup?: number;
    seccompProfile?: { type: string };
  };
  topologySpreadConstraints: { topologyKey: string; labelSelector: LabelSelector }[];
  containers: Container[];
  volumes: Volume[];
}
interface Deployment extends Manifest {
  spec: {
    replicas: number;
    selector: LabelSelector;
    template: { metadata: { labels: Record<string, string> }; spec: PodSpec };
  };
}
interface Service extends Manifest {
  spec: {
    selector: Record<string, string>;
    ports: { name: string; port: number; targetPort: string | number }[];
  };
}
interface NetworkPolicy extends Manifest {
  spec: {
    podSelector: LabelSelector;
    ingress: { from?: unknown[]; ports: { protocol: string; port: number }[] }[];
    egress: { to: unknown[]; ports: { protocol: string; port: number }[] }[];
  };
}
interface RuleWithOperations {
  apiGroups: string[];
  apiVersions: string[];
  operations: string[];
  resources: string[];
  scope: string;
}
interface Webhook {
  name: string;
  admissionReviewVersions: string[];
  sideEffects: string;
  failurePolicy: string;
  matchPolicy: string;
  timeoutSeconds: number;
  reinvocationPolicy?: string;
  clientConfig: {
    service: { namespace: string; name: string; port: number; path: string };
    caBundle?: string;
  };
  namespaceSelector: { matchExpressions: { key: string; operator: string; values: string[] }[] };
  rules: RuleWithOperations[];
}
interface WebhookConfiguration extends Manifest {
  webhooks: Webhook[];
}

/** Every YAML file under deploy/kubernetes, relative to it, sorted. */
function yamlFiles(dir: string, prefix = ''): string[] {
  return readdirSync(dir)
    .sort()
    .flatMap((name) => {
      const full = path.join(dir, name);
      if (statSync(full).isDirectory()) return yamlFiles(full, `${prefix}${name}/`);
      return name.endsWith('.yaml') || name.endsWith('.yml') ? [`${prefix}${name}`] : [];
    });
}

/** The documents of a YAML file, read as `version` reads them (kubectl reads YAML 1.1). */
function documents(file: string, version: '1.1' | '1.2'): unknown[] {
  const text = readFileSync(path.join(DEPLOY, file), 'utf8');
  return parseAllDocuments(text, { version }).map((doc) => {
    if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors.map((e) => e.message).join('; ')}`);
    return doc.toJS() as unknown;
  });
}

const FILES = yamlFiles(DEPLOY);
const MANIFEST_FILES = FILES.filter((f) => path.basename(f) !== 'kustomization.yaml');
const manifestsOf = (file: string): Manifest[] => documents(file, '1.1') as Manifest[];
const ALL: { file: string; object: Manifest }[] = MANIFEST_FILES.flatMap((file) =>
  manifestsOf(file).map((object) => ({ file, object })),
);

function one<T extends Manifest>(file: string, kind: string): T {
  const found = manifestsOf(file).filter((m) => m.kind === kind);
  if (found.length !== 1) throw new Error(`${file}: expected one ${kind}, found ${found.length}`);
  return found[0] as T;
}

const deployment = one<Deployment>('deployment.yaml', 'Deployment');
const pod = deployment.spec.template.spec;
const container = (() => {
  const [only, ...others] = pod.containers;
  if (only === undefined || others.length > 0) throw new Error('deployment.yaml: expected one container');
  return only;
})();
const service = one<Service>('service.yaml', 'Service');
const networkPolicy = one<NetworkPolicy>('networkpolicy.yaml', 'NetworkPolicy');
const namespace = one<Manifest>('namespace.yaml', 'Namespace').metadata.name;
const WEBHOOK_FILES = {
  'webhook-validating.yaml': 'ValidatingWebhookConfiguration',
  'webhook-mutating.yaml': 'MutatingWebhookConfiguration',
  'cert-manager/webhook-validating.yaml': 'ValidatingWebhookConfiguration',
  'cert-manager/webhook-mutating.yaml': 'MutatingWebhookConfiguration',
} as const;
const webhookConfigs = Object.entries(WEBHOOK_FILES).map(([file, kind]) => ({
  file,
  config: one<WebhookConfiguration>(file, kind),
}));
const webhooks = webhookConfigs.flatMap(({ file, config }) =>
  config.webhooks.map((hook) => ({ file, hook })),
);

// ---------------------------------------------------------------------------------------------
// Schemas: Kubernetes' own OpenAPI v3 (trimmed, test/fixtures/kubernetes/SOURCES.md) and
// cert-manager's CRD schemas, checked by Ajv

const KUBERNETES_RELEASES = ['1.30', '1.35'] as const;

interface KubernetesFixture {
  kubernetes: string;
  roots: Record<string, string>;
  resources: {
    group: string;
    version: string;
    kind: string;
    resource: string;
    scope: string;
    subresources: string[];
  }[];
  components: { schemas: Record<string, unknown> };
}
interface CertManagerFixture {
  certManager: string;
  schemas: Record<string, unknown>;
}

const readJson = <T>(file: string): T => JSON.parse(readFileSync(path.join(FIXTURES, file), 'utf8')) as T;
const kubernetesFixtures = KUBERNETES_RELEASES.map((r) => readJson<KubernetesFixture>(`openapi-${r}.json`));
const certManagerFixture = readJson<CertManagerFixture>('cert-manager-v1.21.1.json');

type SchemaNode = Record<string, unknown>;
const isNode = (value: unknown): value is SchemaNode =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * A copy of a schema in which every object with declared properties refuses others, as the
 * apiserver's strict field validation does for `kubectl apply` (kubectl 1.27+ asks for it): a
 * misspelt field is an error, not silently dropped.
 */
function rejectingUnknownFields(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(rejectingUnknownFields);
  if (!isNode(schema)) return schema;
  const out: SchemaNode = {};
  for (const [key, value] of Object.entries(schema)) {
    if (key === 'properties' && isNode(value)) {
      out[key] = Object.fromEntries(Object.entries(value).map(([k, v]) => [k, rejectingUnknownFields(v)]));
    } else if (['items', 'additionalProperties', 'not'].includes(key)) {
      out[key] = rejectingUnknownFields(value);
    } else if (['allOf', 'anyOf', 'oneOf'].includes(key)) {
      out[key] = rejectingUnknownFields(value);
    } else {
      out[key] = value;
    }
  }
  if (
    isNode(out.properties) &&
    out.additionalProperties === undefined &&
    out['x-kubernetes-preserve-unknown-fields'] !== true
  ) {
    out.additionalProperties = false;
  }
  return out;
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * Ajv with the formats Kubernetes' schemas use (an unknown one is an error, so a new format in a
 * regenerated fixture is noticed): `byte` is base64 as the apiserver decodes it; `int-or-string`
 * types are checked by the schema's own `oneOf`.
 */
function newAjv(): Ajv.Ajv {
  const ajv = new Ajv({ allErrors: true, jsonPointers: true, unknownFormats: true });
  ajv.addFormat('byte', BASE64);
  ajv.addFormat('int32', {
    type: 'number',
    validate: (n: number) => Number.isInteger(n) && n >= -(2 ** 31) && n < 2 ** 31,
  });
  ajv.addFormat('int64', { type: 'number', validate: (n: number) => Number.isSafeInteger(n) });
  ajv.addFormat('int-or-string', { validate: () => true });
  return ajv;
}

/** The first segment of the webhooks' path in the files, replaced by the secret when registering. */
const WEBHOOK_PATH_PLACEHOLDER = 'REPLACE-with-webhook-path';

const DNS1123_SUBDOMAIN = /^[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*$/;

/**
 * What the apiserver refuses in a webhook's `clientConfig.service.path`, which the OpenAPI schemas
 * do not say: every segment must be a lower-case DNS subdomain (ValidateWebhookService,
 * staging/src/k8s.io/apiserver/pkg/util/webhook/validation.go, mirrored step by step).
 */
function servicePathProblems(urlPath: string): string[] {
  if (urlPath === '' || urlPath === '/') return [];
  if (urlPath === '//') return ['segment[0] may not be empty'];
  const problems = urlPath.startsWith('/') ? [] : ["must start with a '/'"];
  const toCheck = urlPath.slice(1);
  const steps = (toCheck.endsWith('/') ? toCheck.slice(0, -1) : toCheck).split('/');
  steps.forEach((step, i) => {
    if (step === '') problems.push(`segment[${i}] may not be empty`);
    else if (step.length > 253 || !DNS1123_SUBDOMAIN.test(step)) {
      problems.push(`segment[${i}]: must be a lowercase RFC 1123 subdomain`);
    }
  });
  return problems;
}

/** Validates objects by apiVersion and kind against one Kubernetes release (and cert-manager). */
class SchemaValidator {
  private readonly ajv = newAjv();
  private readonly validators = new Map<string, Ajv.ValidateFunction>();

  constructor(private readonly release: KubernetesFixture) {
    const id = `kubernetes-${release.kubernetes}`;
    const schemas = Object.entries(release.components.schemas).map(([name, s]) => [
      name,
      rejectingUnknownFields(s),
    ]);
    this.ajv.addSchema({ components: { schemas: Object.fromEntries(schemas) } }, id);
    for (const [kind, name] of Object.entries(release.roots)) {
      this.validators.set(kind, this.ajv.compile({ $ref: `${id}#/components/schemas/${name}` }));
    }
    this.validators.set(
      'ObjectMeta',
      this.ajv.compile({ $ref: `${id}#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta` }),
    );
    for (const [kind, schema] of Object.entries(certManagerFixture.schemas)) {
      this.validators.set(kind, this.ajv.compile(rejectingUnknownFields(schema) as object));
    }
  }

  /** Every schema violation of `object`, as `/json/pointer message`; empty when it is valid. */
  problems(object: Manifest): string[] {
    const kind = `${object.apiVersion}/${object.kind}`;
    const validate = this.validators.get(kind);
    if (validate === undefined) return [`no schema for ${kind} in Kubernetes ${this.release.kubernetes}`];
    const found = this.run(validate, object);
    if (object.kind.endsWith('WebhookConfiguration')) {
      (object as WebhookConfiguration).webhooks.forEach((hook, i) => {
        const where = `/webhooks/${i}/clientConfig/service/path`;
        found.push(...servicePathProblems(hook.clientConfig.service.path).map((p) => `${where} ${p}`));
      });
    }
    // A custom resource's schema leaves metadata to the apiserver: check it as ObjectMeta.
    if (object.apiVersion.startsWith('cert-manager.io/')) {
      found.push(...this.run(this.validators.get('ObjectMeta') as Ajv.ValidateFunction, object.metadata));
    }
    return found;
  }

  private run(validate: Ajv.ValidateFunction, value: unknown): string[] {
    if (validate(value) === true) return [];
    return (validate.errors ?? []).map(
      (e) => `${e.dataPath || '/'} ${e.message ?? e.keyword} ${JSON.stringify(e.params)}`,
    );
  }
}

/** A PEM CA certificate, base64'd as `kubectl get secret ... -o jsonpath='{.data.ca\.crt}'` prints it. */
const EXAMPLE_CA_BUNDLE = Buffer.from(
  '-----BEGIN CERTIFICATE-----\nMIIBdzCCAR2gAwIBAgIUexample\n-----END CERTIFICATE-----\n',
).toString('base64');

/** A webhook path with the placeholder replaced by `secret`, as the docs' `sed` does. */
const withSecret = (webhookPath: string, secret: string): string =>
  webhookPath.split(WEBHOOK_PATH_PLACEHOLDER).join(secret);

/**
 * What the docs' "Register the webhook" step does to the file: the CA goes where the `caBundle`
 * placeholder is (not with cert-manager, whose cainjector writes it), and the webhook path secret
 * (here the value the Deployment's environment stands in with) where the path's placeholder is.
 */
const registered = (object: Manifest): Manifest =>
  object.kind.endsWith('WebhookConfiguration')
    ? {
        ...object,
        webhooks: (object as WebhookConfiguration).webhooks.map((hook) => ({
          ...hook,
          clientConfig: {
            ...hook.clientConfig,
            service: {
              ...hook.clientConfig.service,
              path: withSecret(hook.clientConfig.service.path, webhookSecret()),
            },
            ...(hook.clientConfig.caBundle === undefined ? {} : { caBundle: EXAMPLE_CA_BUNDLE }),
          },
        })),
      }
    : object;

describe.each(kubernetesFixtures.map((f) => [f.kubernetes, f] as const))(
  'against the Kubernetes %s schemas',
  (_release, release) => {
    const validator = new SchemaValidator(release);

    it.each(ALL.map(({ file, object }) => [file, object.kind, object] as const))(
      '%s: the %s is valid',
      (_file, _kind, object) => {
        expect(validator.problems(registered(object))).toEqual([]);
      },
    );

    describe('the validator itself', () => {
      const mutated = (change: (d: Deployment) => void): Deployment => {
        const copy = structuredClone(deployment);
        change(copy);
        return copy;
      };

      it('rejects a misspelt field', () => {
        const typo = mutated((d) => {
          (d.spec as Record<string, unknown>).replcas = 2;
        });
        expect(validator.problems(typo).join('\n')).toContain('replcas');
      });

      it('rejects a misspelt field deep in the pod template', () => {
        const typo = mutated((d) => {
          (pod0(d).containers[0]?.securityContext as Record<string, unknown>).readOnlyRootFileSystem = true;
        });
        expect(validator.problems(typo).join('\n')).toContain('readOnlyRootFileSystem');
      });

      it("rejects a misspelt field in a cert-manager Certificate, and a cert-manager object's bad metadata", () => {
        const [certificate] = manifestsOf('cert-manager/certificates.yaml').filter(
          (m) => m.kind === 'Certificate',
        );
        const typo = {
          ...certificate,
          spec: { ...(certificate?.spec as object), dnsName: ['x'] },
        } as Manifest;
        expect(validator.problems(typo).join('\n')).toContain('dnsName');
        const badMetadata = {
          ...certificate,
          metadata: { name: 'x', labels: 'signet' },
        } as unknown as Manifest;
        expect(validator.problems(badMetadata)).not.toEqual([]);
      });

      it('rejects a value of the wrong type', () => {
        const wrong = mutated((d) => {
          (pod0(d).securityContext as Record<string, unknown>).runAsUser = 'nonroot';
        });
        expect(validator.problems(wrong)).not.toEqual([]);
      });

      it('rejects a container without a name', () => {
        const nameless = mutated((d) => {
          delete (pod0(d).containers[0] as Partial<Container>).name;
        });
        expect(validator.problems(nameless).join('\n')).toContain('name');
      });

      it('rejects the caBundle placeholder, as the apiserver would (it is not base64)', () => {
        const [validating] = webhookConfigs;
        expect(validating?.config.webhooks[0]?.clientConfig.caBundle).toMatch(/REPLACE/);
        expect(validator.problems(validating?.config as Manifest).join('\n')).toContain('caBundle');
      });

      it.each(webhookConfigs.map(({ file, config: c }) => [file, c] as const))(
        "rejects %s's path placeholder, as the apiserver would (it is not a lower-case segment)",
        (_file, c) => {
          expect(validator.problems(c)).toContain(
            '/webhooks/0/clientConfig/service/path segment[0]: must be a lowercase RFC 1123 subdomain',
          );
        },
      );

      it("rejects what the apiserver's path check rejects, and takes what it takes", () => {
        expect(servicePathProblems('/admission/prod-eu-1')).toEqual([]);
        expect(servicePathProblems(`/${randomBytes(32).toString('hex')}/admission/prod-eu-1/`)).toEqual([]);
        expect(servicePathProblems('/s3cr3t-Path/admission')).toHaveLength(1);
        expect(servicePathProblems('/a_b/admission')).toHaveLength(1);
        expect(servicePathProblems('//admission')).toEqual(['segment[0] may not be empty']);
        expect(servicePathProblems('admission')).toContain("must start with a '/'");
      });
    });
  },
);

const pod0 = (d: Deployment): PodSpec => d.spec.template.spec;

describe('the manifest files', () => {
  it.each(FILES)('%s reads the same as YAML 1.1 (kubectl) and YAML 1.2', (file) => {
    // 0440 is octal in YAML 1.1 and decimal in 1.2, `yes` a boolean only in 1.1: such values
    // would mean one thing to kubectl and another to these tests.
    expect(documents(file, '1.2')).toEqual(documents(file, '1.1'));
  });

  it('put every namespaced object into the Signet namespace', () => {
    const clusterScoped = new Set([
      'Namespace',
      'ValidatingWebhookConfiguration',
      'MutatingWebhookConfiguration',
    ]);
    for (const { file, object } of ALL) {
      const expected = clusterScoped.has(object.kind) ? undefined : namespace;
      expect({ file, kind: object.kind, namespace: object.metadata.namespace }).toEqual({
        file,
        kind: object.kind,
        namespace: expected,
      });
    }
  });

  it('kustomization.yaml lists every manifest of Signet itself, and neither a webhook nor cert-manager', () => {
    const [kustomization] = documents('kustomization.yaml', '1.1') as {
      apiVersion: string;
      kind: string;
      resources: string[];
    }[];
    expect(kustomization?.apiVersion).toBe('kustomize.config.k8s.io/v1beta1');
    expect(kustomization?.kind).toBe('Kustomization');
    const expected = MANIFEST_FILES.filter((f) => !f.includes('/') && !f.startsWith('webhook-'));
    expect([...(kustomization?.resources ?? [])].sort()).toEqual(expected.sort());
  });
});

// ---------------------------------------------------------------------------------------------
// The ConfigMap's signet.yaml, loaded as `signet serve` loads it in the pod

const CONFIG_PATH = (() => {
  const args = container.args ?? [];
  const at = args.indexOf('--config');
  const value = args[at + 1];
  if (at < 0 || value === undefined) throw new Error('deployment.yaml: the container args name no --config');
  return value;
})();

/** Files the pod sees under read-only mounts, with where each comes from. */
interface ProvidedFile {
  readonly file: string;
  readonly from: { readonly kind: 'ConfigMap' | 'Secret'; readonly name: string; readonly key: string };
  readonly mode: number | undefined;
}

const providedFiles: ProvidedFile[] = container.volumeMounts.flatMap((mount) => {
  const volume = pod.volumes.find((v) => v.name === mount.name);
  if (volume?.projected === undefined) return [];
  return volume.projected.sources.flatMap((source) => {
    const [kind, ref] =
      source.configMap !== undefined
        ? (['ConfigMap', source.configMap] as const)
        : (['Secret', source.secret] as const);
    return (ref?.items ?? []).map((item) => ({
      file: path.posix.join(mount.mountPath, item.path),
      from: { kind, name: ref?.name ?? '', key: item.key },
      mode: volume.projected?.defaultMode,
    }));
  });
});

const writableDirs = container.volumeMounts
  .filter((m) => m.readOnly !== true && pod.volumes.find((v) => v.name === m.name)?.emptyDir !== undefined)
  .map((m) => m.mountPath);

const configMap = one<Manifest & { data: Record<string, string> }>('configmap.yaml', 'ConfigMap');
const configFile = providedFiles.find((p) => p.file === CONFIG_PATH);
const configText = configMap.data[configFile?.from.key ?? ''] ?? '';
const rawConfig = parseAllDocuments(configText)[0]?.toJS() as Record<string, unknown>;

/** The environment the Deployment gives the container, a distinct stand-in value per secret. */
const podEnv: NodeJS.ProcessEnv = Object.fromEntries(
  container.env.map((e) => [
    e.name,
    e.value ??
      `${e.valueFrom?.secretKeyRef?.name}-${e.valueFrom?.secretKeyRef?.key}-0123456789abcdef0123456789abcdef`,
  ]),
);
const loadConfig = (env: NodeJS.ProcessEnv = podEnv): SignetConfig =>
  parseConfig(configText, { source: CONFIG_PATH, baseDir: path.posix.dirname(CONFIG_PATH), env });
const config = loadConfig();

/** The webhook path secret Signet reads in the pod: the stand-in value of its Secret. */
function webhookSecret(): string {
  if (config.server.secretPath === undefined) throw new Error('configmap.yaml: no server.secretPath');
  return config.server.secretPath;
}

/** The Deployment's env entry for the variable that `server.<field>` of the raw config names. */
function serverEnvEntry(field: string): Container['env'][number] | undefined {
  const name = (rawConfig['server'] as Record<string, unknown> | undefined)?.[field];
  return container.env.find((e) => e.name === name);
}

/** Credentials as `signet serve` builds them from the config (cli/serve.ts, verificationAccess). */
const podAccess = (): VerificationAccess => ({
  bearer: config.server.bearerToken === undefined ? undefined : secretDigest(config.server.bearerToken),
  secretPath: config.server.secretPath,
  tokenInPath: false,
});

/**
 * The surface `signet serve` answers with in the pod: the pod's credentials, its policies over
 * in-memory registries (nothing leaves the process), and the operational endpoints (cli/serve.ts
 * always gives them; readiness here says ready).
 */
function serviceDeps(logger: Logger = silentLogger): SurfaceDeps {
  const verifier = new ImageVerifier({
    config,
    registries: new MemoryRegistries(),
    keys: new KeyRing({ witnesses: config.witnesses, baseDir: config.baseDir }),
    signatures: { bundles: false },
  });
  return {
    logger,
    maxBodyBytes: config.server.maxBodyBytes,
    verification: { access: podAccess(), verifier, controller: new AdmissionController({ verifier }) },
    operations: { readiness: () => Promise.resolve({ ready: true, checks: { config: { ok: true } } }) },
  };
}

/** Every `<name>Env` field of the raw config, with its path: environment variables it reads. */
function envFields(value: unknown, at = ''): { at: string; name: string }[] {
  if (Array.isArray(value)) return value.flatMap((v, i) => envFields(v, `${at}[${i}]`));
  if (!isNode(value)) return [];
  return Object.entries(value).flatMap(([key, v]) => {
    const here = at === '' ? key : `${at}.${key}`;
    return key.endsWith('Env') && typeof v === 'string' ? [{ at: here, name: v }] : envFields(v, here);
  });
}

/** The secrets docs/kubernetes.md tells the reader to create, with their keys. */
function secretsInDocs(): Map<string, Set<string>> {
  const text = readFileSync(DOCS, 'utf8').replace(/\\\n\s*/g, ' ');
  const secrets = new Map<string, Set<string>>();
  for (const line of text.split('\n')) {
    const match = /kubectl\b.*\bcreate secret (generic|tls) ([a-z0-9-]+)(.*)$/.exec(line);
    if (match === null) continue;
    const [, type, name, rest = ''] = match;
    const keys = secrets.get(name as string) ?? new Set<string>();
    if (type === 'tls') ['tls.crt', 'tls.key'].forEach((k) => keys.add(k));
    for (const [, key] of rest.matchAll(/--from-literal=([^=\s]+)=/g)) keys.add(key as string);
    for (const [, spec = ''] of rest.matchAll(/--from-file=(\S+)/g)) {
      keys.add(spec.includes('=') ? (spec.split('=')[0] as string) : path.posix.basename(spec));
    }
    secrets.set(name as string, keys);
  }
  return secrets;
}

/** True when `file` is inside `dir` (both absolute POSIX paths). */
const isUnder = (file: string, dir: string): boolean => !path.posix.relative(dir, file).startsWith('..');

describe("the ConfigMap's signet.yaml", () => {
  it('is the file the container is started with (--config), projected from the ConfigMap', () => {
    expect(configFile?.from).toEqual({
      kind: 'ConfigMap',
      name: configMap.metadata.name,
      key: 'signet.yaml',
    });
  });

  it('loads with parseConfig without issues, in the environment the Deployment gives it', () => {
    expect(loadConfig).not.toThrow();
  });

  it('needs every environment variable it names, and each comes from a Secret', () => {
    const named = envFields(rawConfig);
    expect(named.map((n) => n.at)).toEqual(
      expect.arrayContaining(['server.secretPathEnv', 'server.eventsTokenEnv']),
    );
    for (const { at, name } of named) {
      const entry = container.env.find((e) => e.name === name);
      expect({ at, name, fromSecret: entry?.valueFrom?.secretKeyRef !== undefined }).toEqual({
        at,
        name,
        fromSecret: true,
      });
    }
    // And without them it does not load: the pod cannot start half-configured.
    expect(() => parseConfig(configText, { baseDir: path.posix.dirname(CONFIG_PATH), env: {} })).toThrow();
  });

  it('authenticates webhook calls by a secret path from a Secret, not by a bearer token managed apiservers cannot send', () => {
    const entry = serverEnvEntry('secretPathEnv');
    expect(entry?.valueFrom?.secretKeyRef).toEqual({ name: 'signet-tokens', key: 'webhook-path' });
    expect(entry?.value).toBeUndefined();
    // What Signet requires is what the Secret holds, through the variable the Deployment sets.
    expect(config.server.secretPath).toBe(podEnv[entry?.name ?? '']);
    expect(rawConfig['server']).not.toHaveProperty('secretPath');
    expect(rawConfig['server']).not.toHaveProperty('bearerToken');
    expect(rawConfig['server']).not.toHaveProperty('bearerTokenEnv');
    expect(config.server.bearerToken).toBeUndefined();
  });

  it('takes a webhook path secret made as the docs make it, which the apiserver takes in a path too', () => {
    const docs = readFileSync(DOCS, 'utf8').replace(/\\\n\s*/g, ' ');
    const key = serverEnvEntry('secretPathEnv')?.valueFrom?.secretKeyRef?.key ?? '';
    expect(docs).toContain(`--from-literal=${key}="$(openssl rand -hex 32)"`);
    const secret = randomBytes(32).toString('hex');
    const name = serverEnvEntry('secretPathEnv')?.name ?? '';
    expect(loadConfig({ ...podEnv, [name]: secret }).server.secretPath).toBe(secret);
    expect(servicePathProblems(`/${secret}/admission/prod-eu-1`)).toEqual([]);
  });

  it('draws no config-check warning in the pod: key files present, tokens set, no fail-open setting', () => {
    const inPod = (file: string): boolean => providedFiles.some((p) => p.file === file);
    expect(checkConfig(config, inPod).warnings).toEqual([]);
  });

  it('listens on every address, on the port the container, the probes and the Service use', () => {
    expect(config.server.host).toBe('0.0.0.0');
    const https = container.ports.find((p) => p.name === 'https');
    expect(https?.containerPort).toBe(config.server.port);
    const targetPort = service.spec.ports.find((p) => p.port === 443)?.targetPort;
    expect(targetPort === 'https' || targetPort === config.server.port).toBe(true);
    for (const probe of [container.startupProbe, container.livenessProbe, container.readinessProbe]) {
      expect(probe?.httpGet.port === 'https' || probe?.httpGet.port === config.server.port).toBe(true);
    }
    expect(networkPolicy.spec.ingress.flatMap((rule) => rule.ports.map((p) => p.port))).toEqual([
      config.server.port,
    ]);
  });

  it('serves HTTPS with certificate and key from the signet-tls Secret, and keys from signet-keys', () => {
    expect(config.server.tls).toBeDefined();
    const tlsFiles = [config.server.tls?.certFile, config.server.tls?.keyFile];
    const keyFiles = config.witnesses.flatMap((w) =>
      w.key.$case === 'file' || w.key.$case === 'publicKeyFile' ? [w.key.path] : [],
    );
    expect(keyFiles.length).toBeGreaterThan(0);
    for (const file of [...tlsFiles, ...keyFiles]) {
      const provided = providedFiles.find((p) => p.file === file);
      expect({ file, secret: provided?.from.kind }).toEqual({ file, secret: 'Secret' });
    }
    expect(tlsFiles.map((f) => providedFiles.find((p) => p.file === f)?.from)).toEqual([
      { kind: 'Secret', name: 'signet-tls', key: 'tls.crt' },
      { kind: 'Secret', name: 'signet-tls', key: 'tls.key' },
    ]);
    for (const file of keyFiles) {
      expect(providedFiles.find((p) => p.file === file)?.from.name).toBe('signet-keys');
    }
  });

  it('keeps its journal on the writable emptyDir volume, one per replica', () => {
    expect(writableDirs.some((dir) => isUnder(config.journal.path, dir))).toBe(true);
    expect(writableDirs).toContain('/tmp');
    expect(container.securityContext.readOnlyRootFilesystem).toBe(true);
  });

  it('names only Secrets and keys that the docs tell the reader to create', () => {
    const created = secretsInDocs();
    const used = [
      ...providedFiles.filter((p) => p.from.kind === 'Secret').map((p) => p.from),
      ...container.env.flatMap((e) =>
        e.valueFrom?.secretKeyRef === undefined ? [] : [{ kind: 'Secret', ...e.valueFrom.secretKeyRef }],
      ),
    ];
    expect(used.length).toBeGreaterThan(0);
    for (const { name, key } of used) {
      expect({ name, key, created: created.get(name)?.has(key) === true }).toEqual({
        name,
        key,
        created: true,
      });
    }
  });

  it('gets its serving certificate from cert-manager under the same Secret name, when that is used', () => {
    const certificates = manifestsOf('cert-manager/certificates.yaml').filter(
      (m) => m.kind === 'Certificate',
    );
    const serving = certificates.find((c) => (c.spec as { isCA?: boolean }).isCA !== true);
    const spec = serving?.spec as { secretName: string; dnsNames: string[] };
    expect(spec.secretName).toBe('signet-tls');
    // The name the apiserver calls for clientConfig.service, which the certificate must carry.
    expect(spec.dnsNames).toContain(`${service.metadata.name}.${service.metadata.namespace}.svc`);
  });
});

// ---------------------------------------------------------------------------------------------
// Stopping, probing and timing

describe('the Deployment', () => {
  it('stops within its grace period: preStop sleep + shutdownGraceSeconds < terminationGracePeriodSeconds', () => {
    const sleep = container.lifecycle.preStop.sleep?.seconds;
    expect(sleep).toBeGreaterThan(0);
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThan(
      (sleep ?? 0) + config.server.shutdownGraceMs / 1000,
    );
  });

  it('runs 2 replicas as uid/gid 65532, non-root, read-only, unprivileged, seccomp RuntimeDefault', () => {
    expect(deployment.spec.replicas).toBe(2);
    expect(pod.securityContext).toMatchObject({
      runAsNonRoot: true,
      runAsUser: 65532,
      runAsGroup: 65532,
      fsGroup: 65532,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(container.securityContext).toEqual({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      runAsNonRoot: true,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(container.resources.requests).toEqual(expect.objectContaining({ cpu: expect.any(String) }));
    expect(container.resources.limits).toEqual(expect.objectContaining({ memory: expect.any(String) }));
  });

  it('holds no Kubernetes API token', () => {
    const account = one<Manifest & { automountServiceAccountToken?: boolean }>(
      'serviceaccount.yaml',
      'ServiceAccount',
    );
    expect(pod.serviceAccountName).toBe(account.metadata.name);
    expect(account.automountServiceAccountToken).toBe(false);
    expect(pod.automountServiceAccountToken).toBe(false);
  });

  it('gives the projected keys a mode the fsGroup can read and others cannot', () => {
    const mode = providedFiles.find((p) => p.from.name === 'signet-keys')?.mode ?? 0o644;
    expect(mode & 0o040).toBe(0o040);
    expect(mode & 0o007).toBe(0);
  });

  it('is selected by its own selector, the Service, the PDB, the NetworkPolicy and the spread constraints', () => {
    const labels = deployment.spec.template.metadata.labels;
    const selects = (selector: Record<string, string> | undefined): boolean =>
      selector !== undefined &&
      Object.keys(selector).length > 0 &&
      Object.entries(selector).every(([k, v]) => labels[k] === v);
    const pdb = one<Manifest & { spec: { minAvailable: number; selector: LabelSelector } }>(
      'poddisruptionbudget.yaml',
      'PodDisruptionBudget',
    );
    expect(pdb.spec.minAvailable).toBe(1);
    // Fewer than the replicas, or no node could ever be drained.
    expect(pdb.spec.minAvailable).toBeLessThan(deployment.spec.replicas);
    expect(selects(deployment.spec.selector.matchLabels)).toBe(true);
    expect(selects(service.spec.selector)).toBe(true);
    expect(selects(pdb.spec.selector.matchLabels)).toBe(true);
    expect(selects(networkPolicy.spec.podSelector.matchLabels)).toBe(true);
    expect(pod.topologySpreadConstraints.map((c) => c.topologyKey).sort()).toEqual([
      'kubernetes.io/hostname',
      'topology.kubernetes.io/zone',
    ]);
    for (const c of pod.topologySpreadConstraints) expect(selects(c.labelSelector.matchLabels)).toBe(true);
  });

  it('may reach DNS and HTTPS (registries, KMS) and nothing else', () => {
    const ports = networkPolicy.spec.egress.flatMap((rule) =>
      rule.ports.map((p) => `${p.protocol}/${p.port}`),
    );
    expect(ports.sort()).toEqual(['TCP/443', 'TCP/53', 'UDP/53']);
  });
});

describe('the probes', () => {
  const probes = {
    startup: container.startupProbe,
    liveness: container.livenessProbe,
    readiness: container.readinessProbe,
  };

  it('use HTTPS, because the service serves TLS, on /healthz (startup, liveness) and /readyz (readiness)', () => {
    expect(config.server.tls).toBeDefined();
    expect(Object.values(probes).map((p) => p?.httpGet.scheme)).toEqual(['HTTPS', 'HTTPS', 'HTTPS']);
    expect(Object.values(probes).map((p) => p?.httpGet.path)).toEqual(['/healthz', '/healthz', '/readyz']);
  });

  const paths = [...new Set(Object.values(probes).map((p) => p?.httpGet.path ?? ''))];
  it.each(paths)(
    '%s is a route the service answers, without the webhook path secret the kubelet does not have',
    async (probePath) => {
      expect(config.server.secretPath).toBeDefined();
      const response = await handleRequest(
        httpRequest('GET', probePath, { $case: 'bytes', bytes: Buffer.alloc(0) }),
        serviceDeps(),
      );
      expect(response.status).toBe(200);
    },
  );
});

// ---------------------------------------------------------------------------------------------
// The webhook configurations

/** The webhook configuration without what its variant is allowed to change. */
function essence(config: WebhookConfiguration): unknown {
  return {
    ...config,
    kind: undefined,
    metadata: { ...config.metadata, annotations: undefined },
    webhooks: config.webhooks.map((hook) => ({
      ...hook,
      reinvocationPolicy: undefined,
      clientConfig: { ...hook.clientConfig, caBundle: undefined },
    })),
  };
}

describe('the webhook configurations', () => {
  /**
   * Each webhook's path once registered, read by Signet's own access check: granted, with the
   * route that remains once the secret segment is taken off.
   */
  const routes = webhooks.map(({ file, hook }) => {
    const access = checkVerificationAccess(
      podAccess(),
      withSecret(hook.clientConfig.service.path, webhookSecret()),
      undefined,
    );
    return { file, access, route: access.$case === 'granted' ? access.path : undefined };
  });
  /** The cluster id of the admission route `/admission/<cluster>` that remains. */
  const [cluster] = routes.map(({ route }) => {
    const [empty, admission, id, ...more] = (route ?? '').split('/');
    return empty === '' && admission === 'admission' && more.length === 0 ? id : undefined;
  });

  it('are four variants of one webhook: validating or mutating, caBundle pasted or injected by cert-manager', () => {
    const [first, ...rest] = webhookConfigs.map(({ config: c }) => essence(c));
    for (const other of rest) expect(other).toEqual(first);
    for (const { file, config: c } of webhookConfigs) {
      const injected = c.metadata.annotations?.['cert-manager.io/inject-ca-from'];
      const hasBundle = c.webhooks.every((h) => h.clientConfig.caBundle !== undefined);
      expect({ file, injected: injected !== undefined, hasBundle }).toEqual({
        file,
        injected: file.startsWith('cert-manager/'),
        hasBundle: !file.startsWith('cert-manager/'),
      });
      if (injected !== undefined) expect(injected).toBe(`${namespace}/signet-tls`);
      const mutating = c.kind === 'MutatingWebhookConfiguration';
      for (const h of c.webhooks) expect(h.reinvocationPolicy).toBe(mutating ? 'IfNeeded' : undefined);
    }
  });

  it('fail closed, have no side effects, speak AdmissionReview v1 and match equivalent versions', () => {
    for (const { hook } of webhooks) {
      expect(hook).toMatchObject({
        failurePolicy: 'Fail',
        sideEffects: 'None',
        admissionReviewVersions: ['v1'],
        matchPolicy: 'Equivalent',
      });
    }
  });

  it('wait longer than admission.deadlineSeconds, within the 30 s Kubernetes allows', () => {
    for (const { hook } of webhooks) {
      expect(hook.timeoutSeconds).toBeGreaterThan(config.admission.deadlineMs / 1000);
      expect(hook.timeoutSeconds).toBeLessThanOrEqual(30);
    }
  });

  it('put the webhook path secret first in their path, as a placeholder the docs fill in from its Secret', () => {
    for (const { file, hook } of webhooks) {
      const [empty, first] = hook.clientConfig.service.path.split('/');
      expect({ file, empty, first }).toEqual({ file, empty: '', first: WEBHOOK_PATH_PLACEHOLDER });
    }
    // "Register the webhook": the secret read from the key the Deployment reads it from, and put
    // where the placeholder is.
    const docs = readFileSync(DOCS, 'utf8');
    const ref = serverEnvEntry('secretPathEnv')?.valueFrom?.secretKeyRef;
    expect(docs).toContain(
      `kubectl -n ${namespace} get secret ${ref?.name} -o jsonpath='{.data.${ref?.key}}'`,
    );
    expect(docs).toContain(`s|${WEBHOOK_PATH_PLACEHOLDER}|\${WEBHOOK_PATH}|`);
  });

  it("call a path that Signet's access check grants and whose rest is the admission route of one cluster", () => {
    for (const { file, access } of routes)
      expect({ file, access: access.$case }).toEqual({ file, access: 'granted' });
    expect(cluster).toBeDefined();
    for (const { file, route } of routes)
      expect({ file, route }).toEqual({ file, route: `/admission/${cluster}` });
  });

  it('call the Service on 443, for a cluster the policies select', () => {
    for (const { hook } of webhooks) {
      expect(hook.clientConfig.service).toMatchObject({
        namespace: service.metadata.namespace,
        name: service.metadata.name,
        port: 443,
      });
    }
    expect(service.spec.ports.map((p) => p.port)).toContain(443);
    expect(checkCluster(cluster ?? '', 'path')).toBe(cluster);
    const selected = new PolicySet(config.policies, config.witnesses).select(
      { cluster: cluster ?? '', namespace: 'production' },
      { registry: 'registry.example.com', repository: 'team-a/app' },
    );
    expect(selected.map((p) => p.policy.name)).toEqual(['team-a-production']);
  });

  it('leave out exactly the namespaces admission.excludeNamespaces names, Signet and kube-system among them', () => {
    for (const { hook } of webhooks) {
      const [expression, ...others] = hook.namespaceSelector.matchExpressions;
      expect(others).toEqual([]);
      expect(expression?.key).toBe('kubernetes.io/metadata.name');
      expect(expression?.operator).toBe('NotIn');
      expect([...(expression?.values ?? [])].sort()).toEqual([...config.admission.excludeNamespaces].sort());
    }
    expect(config.admission.excludeNamespaces).toEqual(expect.arrayContaining([namespace, 'kube-system']));
  });

  it('ship a config that needs no patches, so the default (validating) webhook suffices', () => {
    expect(config.policies.filter((p) => p.enabled && p.mutateDigest)).toEqual([]);
  });

  describe("once registered, reach Signet's admission route", () => {
    const review = fixture('pod-create');
    const { logger, lines } = capturingLogger();
    const deps = serviceDeps(logger);
    const call = (webhookPath: string, headers: Record<string, string> = {}): Promise<HttpResponse> =>
      handleRequest(
        httpRequest(
          'POST',
          webhookPath,
          { $case: 'bytes', bytes: Buffer.from(JSON.stringify(review)) },
          { 'content-type': 'application/json', ...headers },
        ),
        deps,
      );
    type ReviewAnswer = { response: { uid: string; allowed: boolean; status?: { message: string } } };

    it.each(webhooks.map(({ file, hook }) => [file, hook] as const))(
      '%s: answered, by the policy its cluster id selects',
      async (_file, hook) => {
        const answered = await call(withSecret(hook.clientConfig.service.path, webhookSecret()));
        expect(answered.status).toBe(200);
        const body = answered.body as ReviewAnswer;
        expect(body.response.uid).toBe(review.request.uid);
        // Nothing is in the (in-memory) registry: denied, and by the policy the cluster id selected.
        expect(body.response.allowed).toBe(false);
        expect(body.response.status?.message).toContain('team-a-production');
      },
    );

    it('takes the cluster id from the path: another cluster is not selected by that policy', async () => {
      const other = await call(`/${webhookSecret()}/admission/another-cluster`);
      expect(other.status).toBe(200);
      expect((other.body as ReviewAnswer).response.status?.message).not.toContain('team-a-production');
    });

    it('refuses the unedited placeholder, a path without the secret, and the secret as a bearer token', async () => {
      const [{ hook }] = webhooks as [(typeof webhooks)[number]];
      const unedited = hook.clientConfig.service.path;
      const withoutSecret = unedited.slice(`/${WEBHOOK_PATH_PLACEHOLDER}`.length);
      expect((await call(unedited)).status).toBe(401);
      expect((await call(withoutSecret)).status).toBe(401);
      expect((await call(withoutSecret, { authorization: `Bearer ${webhookSecret()}` })).status).toBe(401);
      expect((await call(`/${webhookSecret()}x${withoutSecret}`)).status).toBe(401);
    });

    it('never logs the secret', async () => {
      await call(`/${webhookSecret()}/nothing-here`);
      await call(`/${webhookSecret()}x/admission/${cluster}`);
      expect(lines.length).toBeGreaterThan(0);
      expect(lines.join('\n')).not.toContain(webhookSecret());
    });
  });
});

describe('the webhook rules', () => {
  /** Whether lib/admission/review.ts reads images from an object of this kind. */
  const handled = (group: string, version: string, kind: string, subResource?: string): boolean => {
    const review = {
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      request: {
        uid: 'probe',
        kind: { group, version, kind },
        ...(subResource === undefined ? {} : { subResource }),
        operation: 'CREATE',
        namespace: 'production',
        object: { apiVersion: 'v1', kind, metadata: { name: 'probe' } },
      },
    };
    return extractImages(parseAdmissionReview(review)).$case !== 'unsupported';
  };

  /** How the apiserver matches a request against a rule (resource or resource/subresource). */
  const matches = (
    rule: RuleWithOperations,
    r: { group: string; version: string; resource: string; subResource?: string; operation: string },
  ): boolean =>
    (rule.operations.includes('*') || rule.operations.includes(r.operation)) &&
    (rule.apiGroups.includes('*') || rule.apiGroups.includes(r.group)) &&
    (rule.apiVersions.includes('*') || rule.apiVersions.includes(r.version)) &&
    rule.resources.includes(r.subResource === undefined ? r.resource : `${r.resource}/${r.subResource}`);

  const covered = (hook: Webhook, r: Parameters<typeof matches>[1]): boolean =>
    hook.rules.some((rule) => matches(rule, r));

  describe.each(kubernetesFixtures.map((f) => [f.kubernetes, f] as const))(
    'over every resource Kubernetes %s serves in the core, apps and batch groups',
    (_release, release) => {
      const handledResources = release.resources.filter((r) => handled(r.group, r.version, r.kind));

      it('finds the kinds with a pod template among them', () => {
        expect(handledResources.map((r) => r.kind).sort()).toEqual(
          [
            'CronJob',
            'DaemonSet',
            'Deployment',
            'Job',
            'Pod',
            'ReplicaSet',
            'ReplicationController',
            'StatefulSet',
          ].sort(),
        );
      });

      it.each(webhooks.map(({ file, hook }) => [file, hook] as const))(
        '%s sends Signet the creation and update of each of them, and of nothing else',
        (_file, hook) => {
          for (const r of release.resources) {
            for (const operation of ['CREATE', 'UPDATE']) {
              const expected = handled(r.group, r.version, r.kind);
              expect({
                resource: r.resource,
                operation,
                covered: covered(hook, { ...r, operation }),
              }).toEqual({
                resource: r.resource,
                operation,
                covered: expected,
              });
            }
            expect(covered(hook, { ...r, operation: 'DELETE' })).toBe(false);
          }
          for (const rule of hook.rules) expect(rule.scope).toBe('Namespaced');
        },
      );

      it.each(webhooks.map(({ file, hook }) => [file, hook] as const))(
        '%s sends Signet `kubectl debug` (pods/ephemeralcontainers) and no other subresource',
        (_file, hook) => {
          for (const r of handledResources) {
            for (const subResource of r.subresources) {
              const expected = r.resource === 'pods' && subResource === 'ephemeralcontainers';
              const request = { ...r, subResource, operation: 'UPDATE' };
              expect({ subResource, covered: covered(hook, request) }).toEqual({
                subResource,
                covered: expected,
              });
            }
          }
          // review.ts reads only the ephemeral containers of that subresource.
          expect(handled('', 'v1', 'Pod', 'ephemeralcontainers')).toBe(true);
        },
      );
    },
  );

  const FIXTURE_NAMES: FixtureName[] = [
    'pod-create',
    'pod-create-dryrun',
    'deployment-create',
    'deployment-update',
    'replicaset-create',
    'statefulset-create',
    'daemonset-create',
    'job-create',
    'cronjob-create',
    'replicationcontroller-create',
    'pod-ephemeralcontainers-update',
    'pod-delete',
    'pod-exec-connect',
  ];

  it.each(FIXTURE_NAMES)(
    "match the apiserver's %s request exactly when Signet has images to check in it",
    (name) => {
      const review = fixture(name);
      const request = parseAdmissionReview(review);
      const extraction = extractImages(request);
      const checks =
        (request.operation === 'CREATE' || request.operation === 'UPDATE') &&
        extraction.$case === 'images' &&
        extraction.sites.length > 0;
      const resource = review.request.resource as { group: string; version: string; resource: string };
      for (const { hook } of webhooks) {
        expect(
          covered(hook, {
            ...resource,
            operation: request.operation,
            ...(request.subResource === undefined ? {} : { subResource: request.subResource }),
          }),
        ).toBe(checks);
      }
    },
  );
});
