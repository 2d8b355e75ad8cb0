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
}

/** What one witness has signed for the digest: the tag each of its signatures names (undefined: none). */
export type WitnessSignatures = ReadonlyMap<string, readonly (string | undefined)[]>;

/** Layers read at most (cosign `.sig` manifests hold a handful). */
const MAX_LAYERS = 64;

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
  // The rest are read only for witnesses not found yet.
  for (const layer of unread) {
    const missing = probes.filter((p) => !found.has(p.witness));
    if (missing.length === 0) break;
    const signature = layerSignature(layer);
    if (signature === undefined || layer.size > MAX_PAYLOAD_BYTES) continue;
    const payload = await client.getBlob(repository, layer.digest, { ...options, size: layer.size });
    const parsed = parsePayload(payload);
    if (!parsed.ok || parsed.payload.critical.image['docker-manifest-digest'] !== digest) continue;
    for (const probe of missing) {
      if (verifiesUnder(probe.publicKey, payload, signature)) add(probe.witness, tagOf(payload));
    }
  }
  return found;
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
