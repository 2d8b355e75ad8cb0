/**
 * Which witnesses signed a digest (presence.ts), over an in-memory registry: layers that are not
 * signatures, payloads too large to read, expected payloads found without a read, and the tags a
 * caller asks about.
 */
import { signatureTag } from '../../lib/core/reference';
import { signedWitnesses } from '../../lib/signing/presence';
import { cosignLayer, cosignSign } from '../support/cosign-writer';
import { MemoryRegistry } from '../support/memory-registry';
import { HOST, PRIVATE_KEYS, PUBLIC_KEYS } from './fixtures';

let registry: MemoryRegistry;
let digest: string;
beforeEach(async () => {
  registry = new MemoryRegistry(HOST);
  digest = await registry.pushImage('team-a/app', 'v1');
});

const release = { witness: 'release', publicKey: PUBLIC_KEYS.release };

describe('signedWitnesses', () => {
  it('asks the registry nothing when no witness is asked about', async () => {
    expect(await signedWitnesses(registry, 'team-a/app', digest, [])).toEqual(new Map());
    expect(registry.calls).toEqual([]);
  });

  it('finds none without a .sig manifest', async () => {
    expect(await signedWitnesses(registry, 'team-a/app', digest, [release])).toEqual(new Map());
    expect(registry.calls).toEqual([`GET manifest team-a/app:${signatureTag(digest)}`]);
  });

  it('passes over layers without a signature and payloads too large to be one', async () => {
    const payload = Buffer.from('x'.repeat(64));
    registry.storeBlob('team-a/app', payload);
    const unsigned = { ...cosignLayer(payload, Buffer.alloc(0)), annotations: {} };
    const huge = {
      ...cosignLayer(payload, cosignSign(PRIVATE_KEYS.release, payload)),
      size: 10 * 1024 * 1024,
    };
    await registry.putSignatureLayers('team-a/app', digest, [unsigned, huge]);
    expect(await signedWitnesses(registry, 'team-a/app', digest, [release])).toEqual(new Map());
    expect(registry.count('GET blob')).toBe(0);
  });

  it('takes an expected payload by its digest, without reading it, whatever it names', async () => {
    const expected = Buffer.from('not a cosign payload, but what this witness would sign');
    registry.storeBlob('team-a/app', expected);
    await registry.putSignatureLayers('team-a/app', digest, [
      cosignLayer(expected, cosignSign(PRIVATE_KEYS.release, expected)),
    ]);
    const found = await signedWitnesses(registry, 'team-a/app', digest, [
      { ...release, expected: [expected] },
    ]);
    expect(found).toEqual(new Map([['release', [undefined]]]));
    expect(registry.count('GET blob')).toBe(0);
  });

  it('reads on until every tag asked about is found, and no further', async () => {
    for (const tag of ['v1', 'v2', 'v3'])
      await registry.sign('team-a/app', digest, PRIVATE_KEYS.release, { tag });
    const anyTag = await signedWitnesses(registry, 'team-a/app', digest, [release]);
    expect(anyTag).toEqual(new Map([['release', ['v1']]]));
    registry.calls.length = 0;
    const two = await signedWitnesses(registry, 'team-a/app', digest, [{ ...release, tags: ['v1', 'v2'] }]);
    expect(two).toEqual(new Map([['release', ['v1', 'v2']]]));
    expect(registry.count('GET blob')).toBe(2);
  });
});
