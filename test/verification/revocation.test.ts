/**
 * Revocation: the `revocations:` section read with errors that name the field, and verification
 * denying a revoked signature with its own reason code (`SIGNATURE_REVOKED`), by key or by rule,
 * with or without a time; signatures made before the time still verify when something trusted
 * (Signet's ledger) says when they were made.
 */
import { ConfigError } from '../../lib/core/errors';
import { parseConfig } from '../../lib/config/load';
import type { Policy, Revocation, SignetConfig, Witness } from '../../lib/config/types';
import { PAYLOAD_ANNOTATIONS, buildPayload } from '../../lib/cosign/payload';
import { KeyRing } from '../../lib/keys/keyring';
import { keyIdOf } from '../../lib/keys/algorithms';
import {
  describeRevocation,
  isRevoked,
  revocationOf,
  signedRule,
  type SigningTimeLookup,
} from '../../lib/verification/revocation';
import { ImageVerifier } from '../../lib/verification/verifier';
import {
  MemoryRegistries,
  MemoryRegistry,
  policy,
  testKey,
  verificationConfig,
  type TestKey,
} from './helpers';

const KEY_ID = `sha256:${'ab'.repeat(32)}`;
const T = Date.parse('2026-11-01T00:00:00Z');
const HOUR = 3_600_000;

const parse = (text: string): SignetConfig => parseConfig(text, { baseDir: '/srv/signet', env: {} });

function issuesOf(text: string): { path: string; message: string }[] {
  try {
    parse(text);
  } catch (err) {
    if (err instanceof ConfigError) return [...err.issues];
    throw err;
  }
  throw new Error('expected a ConfigError');
}

const revocations = (items: string): string => `
witnesses:
  - name: release
    publicKey: file://keys/release.pub
revocations:
${items}`;

describe('revocations in the config', () => {
  describe('when they are well formed', () => {
    it('reads a key id, a rule, an optional time with a zone and a reason', () => {
      const config = parse(
        revocations(`
  - keyId: ${KEY_ID}
  - rule: team-a
    after: 2026-11-01T00:00:00Z
    reason: key leaked in incident 42
  - keyId: ${KEY_ID}
    after: "2026-11-01T02:00:00+02:00"
`),
      );
      expect(config.revocations).toEqual<Revocation[]>([
        { target: { $case: 'keyId', keyId: KEY_ID }, after: undefined, reason: undefined },
        { target: { $case: 'rule', rule: 'team-a' }, after: T, reason: 'key leaked in incident 42' },
        { target: { $case: 'keyId', keyId: KEY_ID }, after: T, reason: undefined },
      ]);
    });

    it('is empty without the section', () => {
      expect(parse('witnesses: []\n').revocations).toEqual([]);
    });
  });

  describe('when they are wrong', () => {
    it('names every bad field at once', () => {
      const issues = issuesOf(
        revocations(`
  - keyId: sha256:ABC
  - rule: team-a
    keyId: ${KEY_ID}
  - reason: nothing to revoke
  - rule: team-a
    after: 2026-11-01
  - rule: team-b
    after: 1 November
  - keyId: ${KEY_ID}
    after: 1793491200
  - rule: team-c
    until: 2026-11-01T00:00:00Z
`),
      );
      expect(issues.map((i) => i.path)).toEqual([
        'revocations[0].keyId',
        'revocations[1].rule',
        'revocations[2]',
        'revocations[3].after',
        'revocations[4].after',
        'revocations[5].after',
        'revocations[6].until',
      ]);
      expect(issues[0]?.message).toContain('sha256:ABC');
      expect(issues[3]?.message).toContain('2026-11-01T00:00:00Z');
    });

    it('refuses the same revocation twice', () => {
      const issues = issuesOf(
        revocations(`
  - keyId: ${KEY_ID}
    after: 2026-11-01T00:00:00Z
  - keyId: ${KEY_ID}
    after: 2026-11-01T00:00:00.000Z
`),
      );
      expect(issues).toEqual([
        { path: 'revocations[1]', message: expect.stringContaining('revocations[0]') },
      ]);
    });

    it('refuses a section that is not a list', () => {
      expect(issuesOf('revocations: {keyId: x}\n').map((i) => i.path)).toEqual(['revocations']);
    });
  });
});

describe('isRevoked', () => {
  const byKey: Revocation = { target: { $case: 'keyId', keyId: KEY_ID }, after: T, reason: undefined };
  const byRule: Revocation = {
    target: { $case: 'rule', rule: 'team-a' },
    after: undefined,
    reason: 'retired',
  };

  it('voids what its target made after its time', () => {
    expect(isRevoked({ keyId: KEY_ID, rule: undefined, signedAt: T + 1 }, [byKey], T + HOUR)).toBe(byKey);
    expect(isRevoked({ keyId: KEY_ID, rule: undefined, signedAt: T - 1 }, [byKey], T + HOUR)).toBeUndefined();
    expect(
      isRevoked(
        { keyId: KEY_ID, rule: undefined, signedAt: new Date(T - 1).toISOString() },
        [byKey],
        T + HOUR,
      ),
    ).toBeUndefined();
    expect(
      isRevoked({ keyId: `sha256:${'cd'.repeat(32)}`, rule: 'x', signedAt: T + 1 }, [byKey], T + HOUR),
    ).toBeUndefined();
    expect(isRevoked({ keyId: KEY_ID, rule: 'team-a', signedAt: T - 1 }, [byKey, byRule], T)).toBe(byRule);
    expect(isRevoked({ keyId: KEY_ID, rule: 'team-b', signedAt: undefined }, [byRule], T)).toBeUndefined();
  });

  it('voids a signature without a signing time once the time has passed, and not before', () => {
    expect(isRevoked({ keyId: KEY_ID, rule: undefined }, [byKey], T + 1)).toBe(byKey);
    expect(isRevoked({ keyId: KEY_ID, rule: undefined }, [byKey], T - 1)).toBeUndefined();
  });

  it('says which revocation and why', () => {
    expect(describeRevocation(byKey)).toBe(
      `signatures by key ${KEY_ID} made after 2026-11-01T00:00:00.000Z are revoked`,
    );
    expect(describeRevocation(byRule)).toBe('signatures by rule "team-a" are revoked (retired)');
  });
});

describe('revocationOf', () => {
  const byKey: Revocation = { target: { $case: 'keyId', keyId: KEY_ID }, after: T, reason: undefined };
  const signature = { keyId: KEY_ID, rule: 'team-a' };

  it('asks the ledger when a time-bound revocation targets a signature without a time', async () => {
    const asked: unknown[] = [];
    const before: SigningTimeLookup = (q) => {
      asked.push(q);
      return Promise.resolve(T - HOUR);
    };
    expect(
      await revocationOf({ revocations: [byKey], signingTime: before }, 'sha256:d', signature, T + HOUR),
    ).toBeUndefined();
    expect(asked).toEqual([{ digest: 'sha256:d', keyId: KEY_ID, rule: 'team-a' }]);
    const after: SigningTimeLookup = () => Promise.resolve(T + 1);
    expect(
      await revocationOf({ revocations: [byKey], signingTime: after }, 'sha256:d', signature, T + HOUR),
    ).toBe(byKey);
  });

  it('keeps the revocation when the ledger knows nothing or cannot be read', async () => {
    const unknown: SigningTimeLookup = () => Promise.resolve(undefined);
    const broken: SigningTimeLookup = () => Promise.reject(new Error('unreadable'));
    for (const signingTime of [unknown, broken, undefined]) {
      expect(await revocationOf({ revocations: [byKey], signingTime }, 'sha256:d', signature, T + HOUR)).toBe(
        byKey,
      );
    }
  });

  it('does not ask when no revocation targets the signature, or when it brings its own time', async () => {
    const never: SigningTimeLookup = () => Promise.reject(new Error('not to be asked'));
    const other = { keyId: `sha256:${'cd'.repeat(32)}`, rule: undefined };
    expect(
      await revocationOf({ revocations: [byKey], signingTime: never }, 'sha256:d', other, T + HOUR),
    ).toBeUndefined();
    expect(
      await revocationOf(
        { revocations: [byKey], signingTime: never },
        'sha256:d',
        { ...signature, signedAt: T - 1 },
        T + HOUR,
      ),
    ).toBeUndefined();
  });
});

describe('signedRule', () => {
  it('reads the rule a Signet payload names, and nothing from other payloads', () => {
    const payload = buildPayload({
      registry: 'r.example',
      repository: 'team-a/app',
      digest: 'sha256:d',
      tag: undefined,
      annotations: { [PAYLOAD_ANNOTATIONS.rule]: 'team-a' },
    });
    expect(signedRule({ source: 'cosign', signedData: payload })).toBe('team-a');
    expect(signedRule({ source: 'bundle', signedData: payload })).toBeUndefined();
    expect(signedRule({ source: 'cosign', signedData: Buffer.from('not json') })).toBeUndefined();
  });
});

describe('verification under revocations', () => {
  const HOST = 'registry.example.com';
  const REPO = 'team-a/app';
  let registries: MemoryRegistries;
  let registry: MemoryRegistry;
  let release: TestKey;
  let security: TestKey;
  let digest: string;

  beforeAll(() => {
    release = testKey('release');
    security = testKey('security');
  });

  beforeEach(async () => {
    registries = new MemoryRegistries();
    registry = registries.add(HOST);
    digest = await registry.pushImage(REPO, 'v1');
  });

  const teamA = (overrides: Partial<Policy> = {}): Policy =>
    policy({
      name: 'team-a',
      images: [`${HOST}/team-a/**`],
      attestors: [{ witnesses: ['release'], count: 1 }],
      ...overrides,
    });

  function verifier(
    list: readonly Revocation[],
    options: { policies?: readonly Policy[]; signingTime?: SigningTimeLookup } = {},
  ): ImageVerifier {
    const witnesses: Witness[] = [release.witness, security.witness];
    return new ImageVerifier({
      config: { ...verificationConfig(witnesses, options.policies ?? [teamA()]), revocations: list },
      registries,
      keys: new KeyRing({ witnesses, baseDir: '/nonexistent' }),
      signatures: { bundles: false },
      ...(options.signingTime !== undefined ? { signingTime: options.signingTime } : {}),
    });
  }

  /** Signs the digest as Signet's pipeline would: the payload names the rule and the key. */
  const signetSign = (key: TestKey, rule: string): Promise<unknown> =>
    registry.sign(REPO, digest, key.privateKey, {
      payload: buildPayload({
        registry: HOST,
        repository: REPO,
        digest,
        tag: undefined,
        annotations: {
          [PAYLOAD_ANNOTATIONS.rule]: rule,
          [PAYLOAD_ANNOTATIONS.keyId]: keyIdOf(key.publicKey),
        },
      }),
    });

  const keyRevocation = (key: TestKey, after?: number): Revocation => ({
    target: { $case: 'keyId', keyId: keyIdOf(key.publicKey) },
    after,
    reason: 'key leaked',
  });

  describe('when the witness key is revoked', () => {
    it('denies with SIGNATURE_REVOKED, naming the revocation', async () => {
      await signetSign(release, 'team-a');
      const decision = await verifier([keyRevocation(release)]).verify(`${HOST}/${REPO}:v1`);
      expect(decision).toMatchObject({
        allowed: false,
        verdict: 'deny',
        reason: { code: 'SIGNATURE_REVOKED' },
      });
      expect(decision.reason?.message).toContain(keyIdOf(release.publicKey));
      expect(decision.reason?.message).toContain('key leaked');
      expect(decision.policies[0]?.attestors[0]?.witnesses[0]).toMatchObject({
        witness: 'release',
        valid: false,
        reason: { code: 'SIGNATURE_REVOKED', witness: 'release' },
      });
    });

    it('still allows what another, unrevoked witness of the set signed', async () => {
      await signetSign(release, 'team-a');
      await signetSign(security, 'team-a');
      const either = teamA({ attestors: [{ witnesses: ['release', 'security'], count: 1 }] });
      const decision = await verifier([keyRevocation(release)], { policies: [either] }).verify(
        `${HOST}/${REPO}:v1`,
      );
      expect(decision).toMatchObject({ allowed: true, verdict: 'allow' });
    });

    it('counts the revoked witness out of N of M', async () => {
      await signetSign(release, 'team-a');
      await signetSign(security, 'team-a');
      const both = teamA({ attestors: [{ witnesses: ['release', 'security'], count: 2 }] });
      const decision = await verifier([keyRevocation(release)], { policies: [both] }).verify(
        `${HOST}/${REPO}:v1`,
      );
      expect(decision).toMatchObject({ allowed: false, reason: { code: 'INSUFFICIENT_WITNESSES' } });
      expect(decision.reason?.message).toContain('release: SIGNATURE_REVOKED');
    });

    it('allows in audit mode with a warning, as any other denial', async () => {
      await signetSign(release, 'team-a');
      const decision = await verifier([keyRevocation(release)], {
        policies: [teamA({ mode: 'audit' })],
      }).verify(`${HOST}/${REPO}:v1`);
      expect(decision).toMatchObject({
        allowed: true,
        verdict: 'warn',
        reason: { code: 'SIGNATURE_REVOKED' },
      });
    });
  });

  describe('when a rule is revoked', () => {
    it('denies the signatures that rule made, and keeps the ones another rule made with the same key', async () => {
      await signetSign(release, 'team-a');
      const byRule: Revocation = {
        target: { $case: 'rule', rule: 'team-a' },
        after: undefined,
        reason: undefined,
      };
      expect(await verifier([byRule]).verify(`${HOST}/${REPO}:v1`)).toMatchObject({
        allowed: false,
        reason: { code: 'SIGNATURE_REVOKED' },
      });
      await signetSign(release, 'team-a-v2');
      expect(await verifier([byRule]).verify(`${HOST}/${REPO}:v1`)).toMatchObject({ allowed: true });
    });
  });

  describe('when a revocation has a time', () => {
    it('still verifies signatures while the time has not come', async () => {
      await signetSign(release, 'team-a');
      const decision = await verifier([keyRevocation(release, Date.now() + HOUR)]).verify(
        `${HOST}/${REPO}:v1`,
      );
      expect(decision).toMatchObject({ allowed: true, verdict: 'allow' });
    });

    it('verifies signatures the ledger says were made before it, and denies the rest', async () => {
      await signetSign(release, 'team-a');
      const after = Date.now() - HOUR;
      const madeBefore: SigningTimeLookup = () => Promise.resolve(after - HOUR);
      const madeAfter: SigningTimeLookup = () => Promise.resolve(after + 1);
      const unknown: SigningTimeLookup = () => Promise.resolve(undefined);
      const revoked = [keyRevocation(release, after)];
      expect(await verifier(revoked, { signingTime: madeBefore }).verify(`${HOST}/${REPO}:v1`)).toMatchObject(
        {
          allowed: true,
        },
      );
      expect(await verifier(revoked, { signingTime: madeAfter }).verify(`${HOST}/${REPO}:v1`)).toMatchObject({
        allowed: false,
        reason: { code: 'SIGNATURE_REVOKED' },
      });
      // No trusted time: it may have been made at any moment up to now (fail closed).
      expect(await verifier(revoked, { signingTime: unknown }).verify(`${HOST}/${REPO}:v1`)).toMatchObject({
        allowed: false,
        reason: { code: 'SIGNATURE_REVOKED' },
      });
      expect(await verifier(revoked).verify(`${HOST}/${REPO}:v1`)).toMatchObject({ allowed: false });
    });
  });

  describe('when nothing is revoked', () => {
    it('verifies as before', async () => {
      await signetSign(release, 'team-a');
      expect(await verifier([]).verify(`${HOST}/${REPO}:v1`)).toMatchObject({ allowed: true });
    });
  });
});
