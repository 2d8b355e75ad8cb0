/**
 * ImageVerifier against the real distribution registry: signatures written by Signet's own
 * pipeline and by an independent cosign-format writer, every denial reason, and tampering.
 */
import { main } from '../../cli/main';
import { CERTIFICATE_ANNOTATION } from '../../lib/cosign/signature-manifest';
import type { ImageDecision } from '../../lib/verification/decision';
import { copySignatureLayers, cosignPayload, writeCosignSignature } from '../support/cosign-writer';
import { startEnvironment, type Environment } from './environment';

let env: Environment;
const ref = (repository: string, tagOrDigest: string): string =>
  `${env.proxy.host}/${repository}${tagOrDigest.startsWith('sha256:') ? `@${tagOrDigest}` : `:${tagOrDigest}`}`;
const verify = (image: string): Promise<ImageDecision> =>
  env.verifier().verify(image, { namespace: 'production' });

beforeAll(async () => {
  env = await startEnvironment({
    policies: ({ proxy, limited, closed }) => `
  - name: basic
    enabled: true
    images: ["${proxy}/basic/**"]
    attestors:
      - witnesses: [release]
    mutateDigest: true
  - name: foreign
    enabled: true
    images: ["${proxy}/foreign/**"]
    attestors:
      - count: 1
        witnesses: [partner, security, vendor]
  - name: pss
    enabled: true
    images: ["${proxy}/pss/**"]
    attestors:
      - witnesses: [release-rsa]
  - name: two-of-three
    enabled: true
    images: ["${proxy}/nofm/**"]
    attestors:
      - count: 2
        witnesses: [release, partner, security]
  - name: two-sets
    enabled: true
    images: ["${proxy}/sets/**"]
    attestors:
      - witnesses: [release]
      - witnesses: [security]
  - name: audit
    enabled: true
    mode: audit
    images: ["${proxy}/audit/**"]
    attestors:
      - witnesses: [partner]
  - name: tamper
    enabled: true
    images: ["${proxy}/tamper/**"]
    attestors:
      - witnesses: [partner]
  - name: keyless
    enabled: true
    images: ["${proxy}/keyless/**"]
    attestors:
      - witnesses: [ci]
  - name: rate
    enabled: true
    images: ["${limited}/**"]
    attestors:
      - witnesses: [release]
  - name: down
    enabled: true
    images: ["${closed}/**"]
    attestors:
      - witnesses: [release]`,
  });
});

afterAll(async () => {
  await env?.stop();
});

describe('signatures Signet wrote', () => {
  it('allows an image signed by the pipeline in default mode, admitted by its tag', async () => {
    const digest = await env.push('basic/app', 'v1');
    const report = await env.sign('basic/app', 'v1', 'release-default');
    expect(report.outcomes.map((o) => o.status)).toEqual(['signed']);
    // The signature names the registry host; the image is admitted through another host (the
    // proxy): simple repository mismatches are not enforced, as with replicated registries.
    const decision = await verify(ref('basic/app', 'v1'));
    expect(decision).toMatchObject({
      allowed: true,
      verdict: 'allow',
      digest,
      mutatedImage: `${ref('basic/app', 'v1')}@${digest}`,
    });
    expect(decision.policies[0]?.attestors[0]?.witnesses[0]).toMatchObject({
      witness: 'release',
      valid: true,
      signature: { algorithm: 'ECDSA_SHA_256', identity: `${env.proxy.host}/basic/app:v1` },
    });
  });

  it('allows an RSA-PSS signature written through the pipeline', async () => {
    await env.push('pss/app', 'v1');
    await env.sign('pss/app', 'v1', 'release-pss');
    const decision = await verify(ref('pss/app', 'v1'));
    expect(decision.allowed).toBe(true);
    expect(decision.policies[0]?.attestors[0]?.witnesses[0]?.signature?.algorithm).toBe('RSASSA_PSS_SHA_256');
  });
});

describe('signatures Signet did not write', () => {
  it.each([
    ['an EC public-key witness', 'partner', {}],
    ['an RSA public-key witness (PKCS#1 v1.5, as cosign signs)', 'security', {}],
    ['a certificate witness (cosign sign --cert)', 'vendor', { cert: true }],
  ] as const)('accepts a cosign-format signature by %s', async (_what, witness, options) => {
    const repository = `foreign/${witness}`;
    const digest = await env.push(repository, 'v1');
    const key = witness === 'vendor' ? env.keys.vendor.privateKey : env.keys[witness].privateKey;
    await writeCosignSignature({
      registryUrl: env.registryUrl,
      identityHost: env.proxy.host,
      repository,
      digest,
      key,
      ...('cert' in options
        ? { annotations: { [CERTIFICATE_ANNOTATION]: env.keys.vendor.certificatePem } }
        : {}),
    });
    const decision = await verify(ref(repository, 'v1'));
    expect(decision.allowed).toBe(true);
    expect(decision.policies[0]?.attestors[0]?.witnesses.find((w) => w.valid)?.witness).toBe(witness);
  });
});

describe('denials', () => {
  it('denies an unsigned image with NO_SIGNATURES, naming image and policy', async () => {
    await env.push('basic/unsigned', 'v1');
    const decision = await verify(ref('basic/unsigned', 'v1'));
    expect(decision).toMatchObject({ allowed: false, reason: { code: 'NO_SIGNATURES' } });
    expect(decision.message).toContain('policy "basic"');
    expect(decision.reference).toBe(ref('basic/unsigned', 'v1'));
  });

  it('denies a signature by an untrusted key with UNTRUSTED_SIGNER', async () => {
    const digest = await env.push('foreign/untrusted', 'v1');
    await writeCosignSignature({
      registryUrl: env.registryUrl,
      identityHost: env.proxy.host,
      repository: 'foreign/untrusted',
      digest,
      key: env.keys.attacker.privateKey,
    });
    const decision = await verify(ref('foreign/untrusted', 'v1'));
    expect(decision.allowed).toBe(false);
    expect(decision.reason?.code).toBe('UNTRUSTED_SIGNER');
  });

  it('denies a trusted signature over another digest with DIGEST_MISMATCH', async () => {
    const other = await env.push('tamper/mismatch', 'other');
    const digest = await env.push('tamper/mismatch', 'v1');
    await writeCosignSignature({
      registryUrl: env.registryUrl,
      identityHost: env.proxy.host,
      repository: 'tamper/mismatch',
      digest,
      key: env.keys.partner.privateKey,
      payloadDigest: other,
    });
    const decision = await verify(ref('tamper/mismatch', 'v1'));
    expect(decision.reason).toMatchObject({ code: 'DIGEST_MISMATCH', expected: digest, signed: [other] });
  });

  it('denies a tag the default-mode signature does not name with TAG_NOT_SIGNED', async () => {
    const digest = await env.push('basic/tags', 'v1', 'same-image');
    expect(await env.push('basic/tags', 'v2', 'same-image')).toBe(digest);
    await env.sign('basic/tags', 'v1', 'release-default');
    const decision = await verify(ref('basic/tags', 'v2'));
    expect(decision.reason).toMatchObject({ code: 'TAG_NOT_SIGNED', tag: 'v2', signedTags: ['v1'] });
    expect((await verify(ref('basic/tags', 'v1'))).allowed).toBe(true);
    expect((await verify(ref('basic/tags', digest))).allowed).toBe(true);
  });

  it('denies fewer than count witnesses with INSUFFICIENT_WITNESSES, then allows with enough', async () => {
    const digest = await env.push('nofm/app', 'v1');
    await env.sign('nofm/app', 'v1', 'release-simple');
    const one = await verify(ref('nofm/app', 'v1'));
    expect(one.reason).toMatchObject({ code: 'INSUFFICIENT_WITNESSES', required: 2, valid: 1 });
    await writeCosignSignature({
      registryUrl: env.registryUrl,
      identityHost: env.proxy.host,
      repository: 'nofm/app',
      digest,
      key: env.keys.security.privateKey,
    });
    const two = await verify(ref('nofm/app', 'v1'));
    expect(two.allowed).toBe(true);
    expect(two.policies[0]?.attestors[0]).toMatchObject({ count: 2, valid: 2 });
  });

  it('requires every attestor set', async () => {
    const digest = await env.push('sets/app', 'v1');
    await env.sign('sets/app', 'v1', 'release-default');
    const first = await verify(ref('sets/app', 'v1'));
    expect(first.allowed).toBe(false);
    expect(first.policies[0]?.attestors.map((a) => a.passed)).toEqual([true, false]);
    await writeCosignSignature({
      registryUrl: env.registryUrl,
      identityHost: env.proxy.host,
      repository: 'sets/app',
      digest,
      key: env.keys.security.privateKey,
    });
    expect((await verify(ref('sets/app', 'v1'))).allowed).toBe(true);
  });

  it('denies with IMAGE_NOT_FOUND for a tag that does not exist', async () => {
    expect((await verify(ref('basic/app', 'missing'))).reason?.code).toBe('IMAGE_NOT_FOUND');
  });

  it('says the registry is unreachable (not that the image is unsigned)', async () => {
    const decision = await verify(`${env.closedHost}/team/app:v1`);
    expect(decision).toMatchObject({
      allowed: false,
      reason: { code: 'REGISTRY_UNREACHABLE', registry: env.closedHost },
    });
    expect(decision.message).toContain('unreachable');
  });

  it('says the registry is rate-limiting (not that the image is unsigned)', async () => {
    await env.push('limited/app', 'v1');
    const decision = await verify(`${env.limited.host}/limited/app:v1`);
    expect(decision).toMatchObject({
      allowed: false,
      reason: { code: 'REGISTRY_RATE_LIMITED', registry: env.limited.host },
    });
    expect(decision.message).toContain('rate-limiting');
    // The tag resolved through the proxy; only the signature read was throttled.
    expect(env.limited.count('HEAD', '/manifests/v1')).toBeGreaterThan(0);
  });

  it('denies an image a keyless witness never signed with NO_SIGNATURES (keyless.int.test.ts has real ones)', async () => {
    await env.push('keyless/app', 'v1');
    expect((await verify(ref('keyless/app', 'v1'))).reason?.code).toBe('NO_SIGNATURES');
  });
});

describe('audit mode', () => {
  it('admits an unsigned image with a short warning', async () => {
    await env.push('audit/app', 'v1');
    const decision = await verify(ref('audit/app', 'v1'));
    expect(decision).toMatchObject({ allowed: true, verdict: 'warn', reason: { code: 'NO_SIGNATURES' } });
    expect(decision.warnings).toHaveLength(1);
    expect(decision.warnings[0]!.length).toBeLessThan(120);
  });
});

describe('tampering', () => {
  it('denies a swapped payload (the stored payload is not the one signed)', async () => {
    const digest = await env.push('tamper/swap', 'v1');
    await writeCosignSignature({
      registryUrl: env.registryUrl,
      identityHost: env.proxy.host,
      repository: 'tamper/swap',
      digest,
      key: env.keys.partner.privateKey,
      signedBytes: cosignPayload(`${env.registry.host}/tamper/swap`, `sha256:${'0'.repeat(64)}`),
    });
    expect((await verify(ref('tamper/swap', 'v1'))).reason?.code).toBe('UNTRUSTED_SIGNER');
  });

  it('denies a signature replaced by one from another key', async () => {
    const digest = await env.push('tamper/rekey', 'v1');
    await writeCosignSignature({
      registryUrl: env.registryUrl,
      identityHost: env.proxy.host,
      repository: 'tamper/rekey',
      digest,
      key: env.keys.partner.privateKey,
    });
    expect((await verify(ref('tamper/rekey', 'v1'))).allowed).toBe(true);
    await writeCosignSignature({
      registryUrl: env.registryUrl,
      identityHost: env.proxy.host,
      repository: 'tamper/rekey',
      digest,
      key: env.keys.attacker.privateKey,
      mode: 'replace',
    });
    expect((await verify(ref('tamper/rekey', 'v1'))).reason?.code).toBe('UNTRUSTED_SIGNER');
  });

  it("denies another image's valid signature copied onto this one", async () => {
    const signed = await env.push('tamper/replay', 'good');
    const evil = await env.push('tamper/replay', 'evil');
    await writeCosignSignature({
      registryUrl: env.registryUrl,
      identityHost: env.proxy.host,
      repository: 'tamper/replay',
      digest: signed,
      key: env.keys.partner.privateKey,
    });
    await copySignatureLayers(env.registryUrl, 'tamper/replay', signed, evil);
    const decision = await verify(ref('tamper/replay', 'evil'));
    expect(decision.reason).toMatchObject({ code: 'DIGEST_MISMATCH', expected: evil, signed: [signed] });
  });

  it('denies a default-mode signature replayed for a different tag', async () => {
    const digest = await env.push('tamper/tag', 'v1', 'tag-replay');
    await env.push('tamper/tag', 'prod', 'tag-replay');
    await writeCosignSignature({
      registryUrl: env.registryUrl,
      identityHost: env.proxy.host,
      repository: 'tamper/tag',
      digest,
      key: env.keys.partner.privateKey,
      tag: 'v1',
    });
    expect((await verify(ref('tamper/tag', 'v1'))).allowed).toBe(true);
    expect((await verify(ref('tamper/tag', 'prod'))).reason).toMatchObject({
      code: 'TAG_NOT_SIGNED',
      tag: 'prod',
    });
  });
});

describe('caching and request counts', () => {
  it('resolves a tag with one HEAD and reads the signatures once across verifications', async () => {
    const digest = await env.push('basic/cached', 'v1');
    await env.sign('basic/cached', 'v1', 'release-default');
    const verifier = env.verifier();
    const heads = env.proxy.count('HEAD', '/basic/cached/manifests/v1');
    const sigs = env.proxy.count('GET', `/basic/cached/manifests/${digest.replace(':', '-')}.sig`);
    expect((await verifier.verify(ref('basic/cached', 'v1'))).allowed).toBe(true);
    const again = await verifier.verify(ref('basic/cached', 'v1'));
    expect(again.policies[0]?.cached).toBe(true);
    expect(env.proxy.count('HEAD', '/basic/cached/manifests/v1') - heads).toBe(2);
    expect(env.proxy.count('GET', `/basic/cached/manifests/${digest.replace(':', '-')}.sig`) - sigs).toBe(1);
    // A digest reference is never resolved.
    await verifier.verify(ref('basic/cached', digest));
    expect(env.proxy.count('HEAD', `/basic/cached/manifests/${digest}`)).toBe(0);
  });
});

describe('signet verify', () => {
  const capture = () => {
    let text = '';
    const stream = {
      write: (chunk: string) => {
        text += chunk;
        return true;
      },
    } as never;
    return { stream, text: () => text };
  };
  const cli = async (...args: string[]) => {
    const out = capture();
    const err = capture();
    const code = await main(
      ['verify', ...args, '--config', env.configPath, '--log-level', 'error'],
      out.stream,
      err.stream,
    );
    return { code, decision: JSON.parse(out.text()) as ImageDecision };
  };

  it('prints the decision and exits 0 when allowed', async () => {
    const digest = await env.push('basic/cli', 'v1');
    await env.sign('basic/cli', 'v1', 'release-default');
    const { code, decision } = await cli(
      ref('basic/cli', 'v1'),
      '--namespace',
      'production',
      '--cluster',
      'eu-1',
    );
    expect(code).toBe(0);
    expect(decision).toMatchObject({ allowed: true, digest, namespace: 'production', cluster: 'eu-1' });
    expect(decision.policies[0]?.attestors[0]?.witnesses[0]).toMatchObject({
      witness: 'release',
      valid: true,
    });
  });

  it('exits 1 on deny, with the reason', async () => {
    await env.push('basic/cli-unsigned', 'v1');
    const { code, decision } = await cli(ref('basic/cli-unsigned', 'v1'));
    expect(code).toBe(1);
    expect(decision.reason?.code).toBe('NO_SIGNATURES');
  });
});
