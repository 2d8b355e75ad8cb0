/**
 * Unit-test fixtures for the signing core: real keys on disk (an EC P-256 and an RSA 2048 file
 * witness, a verify-only public key, a witness whose file is missing), configs read by the real
 * loader, an in-memory registry, and independent checks of what Signet wrote, with node:crypto
 * only (no Signet code): cosign `.sig` layers and Sigstore bundles in the fallback index.
 */
import { createHash, generateKeyPairSync, verify, type KeyObject } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../../lib/config/load';
import type { SignetConfig } from '../../lib/config/types';
import { silentLogger, type Logger } from '../../lib/core/logger';
import type { PushEvent } from '../../lib/events/types';
import { KeyRing } from '../../lib/keys/keyring';
import { SigningPipeline, type SigningPipelineDeps } from '../../lib/signing/pipeline';
import { MemoryRegistries, type MemoryRegistry } from '../support/memory-registry';

export const HOST = 'registry.example.com';
export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const SIGNATURE_ANNOTATION = 'dev.cosignproject.cosign/signature';

const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });

/** Public halves of the file witnesses, to check signatures with. */
export const PUBLIC_KEYS: Readonly<Record<'release' | 'release-rsa', KeyObject>> = {
  release: ec.publicKey,
  'release-rsa': rsa.publicKey,
};

/** Private halves, for tests that sign as "another writer" with the same key. */
export const PRIVATE_KEYS: Readonly<Record<'release' | 'release-rsa', KeyObject>> = {
  release: ec.privateKey,
  'release-rsa': rsa.privateKey,
};

const WITNESSES = `
witnesses:
  - name: release
    key: file://keys/release.pem
  - name: release-rsa
    key: file://keys/release-rsa.pem
  - name: verify-only
    publicKey: file://keys/release.pub
  - name: missing
    key: file://keys/missing.pem
`;

/** A config directory with keys, a loaded config, its KeyRing and an in-memory registry. */
export interface SigningFixture {
  readonly dir: string;
  readonly config: SignetConfig;
  readonly keys: KeyRing;
  readonly registries: MemoryRegistries;
  readonly registry: MemoryRegistry;
  pipeline(deps?: Partial<SigningPipelineDeps>): SigningPipeline;
  cleanup(): Promise<void>;
}

/**
 * `rules` is the YAML of `signingRules:` entries (indented by two spaces); `registries`, of
 * `registries:` entries (default: one, HOST), each of which gets an in-memory registry.
 */
export async function signingFixture(
  rules: string,
  logger: Logger = silentLogger,
  options: { readonly registries?: string } = {},
): Promise<SigningFixture> {
  const dir = await mkdtemp(join(tmpdir(), 'signet-signing-'));
  await mkdir(join(dir, 'keys'));
  await writeFile(join(dir, 'keys', 'release.pem'), ec.privateKey.export({ type: 'pkcs8', format: 'pem' }));
  await writeFile(
    join(dir, 'keys', 'release-rsa.pem'),
    rsa.privateKey.export({ type: 'pkcs8', format: 'pem' }),
  );
  await writeFile(join(dir, 'keys', 'release.pub'), ec.publicKey.export({ type: 'spki', format: 'pem' }));
  const registriesYaml = options.registries ?? `  - host: ${HOST}\n`;
  const config = parseConfig(`registries:\n${registriesYaml}${WITNESSES}signingRules:\n${rules}`, {
    baseDir: dir,
    source: join(dir, 'signet.yaml'),
  });
  const keys = new KeyRing({ witnesses: config.witnesses, baseDir: dir });
  const registries = new MemoryRegistries();
  for (const { host } of config.registries) if (host !== HOST) registries.add(host);
  const registry = registries.add(HOST);
  return {
    dir,
    config,
    keys,
    registries,
    registry,
    pipeline: (deps = {}) => new SigningPipeline({ config, registries, keys, logger, ...deps }),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}

/** A push event as the distribution normalizer produces it. */
export function pushEvent(repository: string, digest: string, overrides: Partial<PushEvent> = {}): PushEvent {
  return {
    registry: HOST,
    repository,
    digest,
    tag: 'v1',
    mediaType: OCI_MANIFEST,
    artifactType: undefined,
    source: 'distribution',
    id: undefined,
    ...overrides,
  };
}

const sha256 = (bytes: Buffer): string => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

/** One `.sig` layer as an independent verifier reads it. */
export interface ReadSignature {
  readonly payload: {
    critical: {
      identity: { 'docker-reference': string };
      image: { 'docker-manifest-digest': string };
      type: string;
    };
    optional: Record<string, string> | null;
  };
  /** Which of PUBLIC_KEYS verifies the signature (PKCS#1 v1.5 or DER ECDSA over sha256). */
  readonly witness: string | undefined;
}

/** Every layer of `digest`'s `.sig` manifest, checked with node:crypto alone. */
export function readSignatures(
  registry: MemoryRegistry,
  repository: string,
  digest: string,
): ReadSignature[] {
  return registry.signatureLayers(repository, digest).map((layer) => {
    const payload = registry.blobs.get(`${repository}@${layer.digest}`);
    if (payload === undefined || sha256(payload) !== layer.digest)
      throw new Error(`payload ${layer.digest} missing`);
    const signature = Buffer.from(layer.annotations?.[SIGNATURE_ANNOTATION] ?? '', 'base64');
    const witness = Object.entries(PUBLIC_KEYS).find(([, key]) =>
      verify('sha256', payload, key, signature),
    )?.[0];
    return { payload: JSON.parse(payload.toString('utf8')) as ReadSignature['payload'], witness };
  });
}

/** The witnesses whose bundles the `sha256-<hex>` fallback index lists for `digest`, checked with node:crypto. */
export function readFallbackBundles(registry: MemoryRegistry, repository: string, digest: string): string[] {
  const index = registry.manifestAt<{ manifests: { digest: string }[] }>(
    repository,
    digest.replace(':', '-'),
  );
  return (index?.manifests ?? []).map(({ digest: referrer }) => {
    const manifest = registry.manifestAt<{ layers: { digest: string }[]; subject: { digest: string } }>(
      repository,
      referrer,
    );
    const layer = manifest?.layers[0];
    if (manifest === undefined || layer === undefined || manifest.subject.digest !== digest)
      throw new Error(`referrer ${referrer} is not a bundle of ${digest}`);
    const bundle = JSON.parse(
      registry.blobs.get(`${repository}@${layer.digest}`)?.toString('utf8') ?? '{}',
    ) as {
      dsseEnvelope: { payload: string; payloadType: string; signatures: { sig: string }[] };
    };
    const { payload, payloadType, signatures } = bundle.dsseEnvelope;
    const statement = Buffer.from(payload, 'base64');
    const pae = Buffer.concat([
      Buffer.from(`DSSEv1 ${payloadType.length} ${payloadType} ${statement.length} `),
      statement,
    ]);
    const subject = (JSON.parse(statement.toString('utf8')) as { subject: { digest: { sha256: string } }[] })
      .subject[0];
    if (`sha256:${subject?.digest.sha256}` !== digest)
      throw new Error(`bundle ${referrer} names another digest`);
    const signature = Buffer.from(signatures[0]?.sig ?? '', 'base64');
    return (
      Object.entries(PUBLIC_KEYS).find(([, key]) => verify('sha256', pae, key, signature))?.[0] ?? 'unknown'
    );
  });
}
