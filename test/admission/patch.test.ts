import { applyPatch, digestPatch, encodePatch } from '../../lib/admission/patch';
import { escapePointer, type ImageSite } from '../../lib/admission/review';

const site = (pointer: string, image: string, unchanged = false): ImageSite => ({
  pointer,
  field: pointer,
  image,
  problem: undefined,
  unchanged,
});
const D = `sha256:${'b'.repeat(64)}`;

describe('digestPatch', () => {
  const sites = [
    site('/spec/containers/0/image', 'r.example.com/a:v1'),
    site('/spec/containers/1/image', 'r.example.com/b:v1', true),
  ];
  const pinned = (image: string) => `${image}@${D}`;

  it('replaces every pinned image on CREATE', () => {
    expect(digestPatch(sites, pinned, 'CREATE')).toEqual([
      { op: 'replace', path: '/spec/containers/0/image', value: `r.example.com/a:v1@${D}` },
      { op: 'replace', path: '/spec/containers/1/image', value: `r.example.com/b:v1@${D}` },
    ]);
  });

  it('leaves images an UPDATE does not change', () => {
    expect(digestPatch(sites, pinned, 'UPDATE').map((op) => op.path)).toEqual(['/spec/containers/0/image']);
  });

  it('skips images without a pinned form', () => {
    expect(digestPatch(sites, () => undefined, 'CREATE')).toEqual([]);
  });
});

describe('encodePatch and applyPatch', () => {
  it('round-trips through base64 and changes only the targets', () => {
    const pod = {
      spec: { containers: [{ name: 'a', image: 'x:v1' }], initContainers: [{ name: 'i', image: 'y:v1' }] },
    };
    const ops = [{ op: 'replace' as const, path: '/spec/initContainers/0/image', value: `y:v1@${D}` }];
    const decoded = JSON.parse(Buffer.from(encodePatch(ops), 'base64').toString('utf8'));
    expect(decoded).toEqual(ops);
    const patched = applyPatch(pod, decoded);
    expect(patched.spec.initContainers[0]?.image).toBe(`y:v1@${D}`);
    expect(patched.spec.containers[0]?.image).toBe('x:v1');
    expect(pod.spec.initContainers[0]?.image).toBe('y:v1');
  });

  it('refuses a path that does not exist', () => {
    expect(() =>
      applyPatch({ spec: {} }, [{ op: 'replace', path: '/spec/containers/0/image', value: 'x' }]),
    ).toThrow('does not exist');
  });

  it('escapes pointer segments per RFC 6901', () => {
    expect(escapePointer('a/b~c')).toBe('a~1b~0c');
    expect(applyPatch({ 'a/b~c': 1 }, [{ op: 'replace', path: '/a~1b~0c', value: 'x' }])).toEqual({
      'a/b~c': 'x',
    });
  });
});
