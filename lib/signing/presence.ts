/**
 * Which witnesses already signed a digest, whatever the payload: read from the digest's cosign
 * `sha256-<hex>.sig` manifest, each layer's payload naming the digest and its signature verifying
 * under the witness's key. Signing asks this when the question is "does this witness vouch for the
 * digest yet?" rather than "is this exact payload there?" (what the publisher asks): a backfill
 * skips what a push already signed, and a countersignature re-driven by a signature push does
 * not add a second one.
 *
 * A layer whose digest is a payload the caller expects (the one it would write) is checked
 * against those bytes, without reading its blob: a backfill that finds its own signatures costs
 * one manifest read per digest.
 */
import type { KeyObject } from 'node:crypto';
import { RegistryError, type RegistryErrorCode } from '../core/errors';
import { signatureTag } from '../core/reference';
import { identityTag, MAX_PAYLOAD_BYTES, parsePayload, sha256Digest } from '../cosign/payload';
import { layerSignature } from '../cosign/signature-manifest';
import { algorithmsFor, shapeOf, verifySignature } from '../keys/algorithms';
import type { Descriptor, ReadOptions, RegistryClient } from '../registry/types';

/** A witness to look for: its name and public key, and the payloads it would write, if known. */
export interface WitnessProbe {
  readonly witness: string;
  readonly publicKey: KeyObject;
  /** Payloads this witness would sign (checked by digest first: no blob read when one is there). */
  readonly expected?: readonly Buffer[];
  /**
   * The tags the caller asks about (undefined: the digest alone). Without them any signature of
   * the witness answers the question; with them, layers are read until each of these tags, or a
   * tag-less signature (which vouches under every tag), is found.
   */
  readonly tags?: readonly (string | undefined)[];
}

/** What one witness has signed for the digest: the tag each of its signatures names (undefined: none). */
export type WitnessSignatures = ReadonlyMap<string, readonly (string | undefined)[]>;

/** Layers read at most (cosign `.sig` manifests hold a handful). */
const MAX_LAYERS = 64;

/** How a registry answers for a payload blob that is gone or broken: no witness's signature. */
const UNUSABLE_PAYLOAD: ReadonlySet<RegistryErrorCode> = new Set([
  'NOT_FOUND',
  'DIGEST_MISMATCH',
  'TOO_LARGE',
  'PROTOCOL',
]);

/** The witnesses of `probes` that have a valid signature for `digest`, with the tags they signed. */
export async function signedWitnesses(
  client: RegistryClient,
  repository: string,
  digest: string,
  probes: readonly WitnessProbe[],
  options: ReadOptions = {},
): Promise<WitnessSignatures> {
  const found = new Map<string, (string | undefined)[]>();
  if (probes.length === 0) return found;
  const fetched = await client.getManifest(repository, signatureTag(digest), options);
  if (fetched === undefined || !('layers' in fetched.manifest)) return found;
  const add = (witness: string, tag: string | undefined): void => {
    found.set(witness, [...(found.get(witness) ?? []), tag]);
  };
  const expected = new Map<string, { probe: WitnessProbe; payload: Buffer }>();
  for (const probe of probes)
    for (const payload of probe.expected ?? []) expected.set(sha256Digest(payload), { probe, payload });

  const unread: Descriptor[] = [];
  for (const layer of fetched.manifest.layers.slice(0, MAX_LAYERS)) {
    const signature = layerSignature(layer);
    if (signature === undefined) continue;
    const known = expected.get(layer.digest);
    if (known !== undefined && verifiesUnder(known.probe.publicKey, known.payload, signature)) {
      add(known.probe.witness, tagOf(known.payload));
    } else {
      unread.push(layer);
    }
  }
  // The rest are read only for witnesses whose question is still open.
  for (const layer of unread) {
    const missing = probes.filter((p) => !answered(p, found.get(p.witness)));
    if (missing.length === 0) break;
    const signature = layerSignature(layer);
    if (signature === undefined || layer.size > MAX_PAYLOAD_BYTES) continue;
    const payload = await readPayload(client, repository, layer, options);
    if (payload === undefined) continue;
    const parsed = parsePayload(payload);
    if (!parsed.ok || parsed.payload.critical.image['docker-manifest-digest'] !== digest) continue;
    for (const probe of missing) {
      if (verifiesUnder(probe.publicKey, payload, signature)) add(probe.witness, tagOf(payload));
    }
  }
  return found;
}

/** True when what was found of `probe`'s witness answers the probe's question. */
function answered(probe: WitnessProbe, signed: readonly (string | undefined)[] | undefined): boolean {
  if (signed === undefined) return false;
  if (probe.tags === undefined || signed.includes(undefined)) return true;
  return probe.tags.every((tag) => signed.includes(tag));
}

/**
 * A layer's payload; undefined when the registry lost or garbles it (another writer's broken
 * layer says nothing about any witness). Failures another attempt may cure, and the caller's
 * abort or budget, are thrown.
 */
async function readPayload(
  client: RegistryClient,
  repository: string,
  layer: Descriptor,
  options: ReadOptions,
): Promise<Buffer | undefined> {
  try {
    return await client.getBlob(repository, layer.digest, { ...options, size: layer.size });
  } catch (err) {
    if (err instanceof RegistryError && UNUSABLE_PAYLOAD.has(err.code)) return undefined;
    throw err;
  }
}

function verifiesUnder(publicKey: KeyObject, payload: Buffer, signature: Buffer): boolean {
  return algorithmsFor(shapeOf(publicKey)).some((algorithm) =>
    verifySignature(publicKey, algorithm, payload, signature),
  );
}

function tagOf(payload: Buffer): string | undefined {
  const parsed = parsePayload(payload);
  return parsed.ok ? identityTag(parsed.payload.critical.identity['docker-reference']) : undefined;
}
