/**
 * Signing rules with `conditions`, through the pipeline over an in-memory registry and real local
 * keys: who pushed (`pushedBy`), what the scan found (`scan`, and waiting for it), and whether
 * another witness already signed (`signedBy`, answered by the real `VerifierConditionChecker`).
 * What held is read back from the payloads with node:crypto alone (fixtures.ts).
 */
import { VerifierConditionChecker } from '../../lib/countersign';
import { RegistryError } from '../../lib/core/errors';
import { parseReference } from '../../lib/core/reference';
import type { ScanEvent, ScanResult } from '../../lib/events/types';
import { CONDITION_ANNOTATIONS, CONDITION_UNAVAILABLE } from '../../lib/signing/conditions';
import { notSigned, type SigningPipeline, type SigningReport } from '../../lib/signing/pipeline';
import {
  HOST,
  PRIVATE_KEYS,
  pushEvent,
  readSignatures,
  signingFixture,
  type SigningFixture,
} from './fixtures';

const NOW = Date.UTC(2026, 0, 1);
const clock = (): number => NOW;

const byRule = (report: SigningReport, rule: string) => report.outcomes.find((o) => o.rule === rule);
const clean: ScanResult = {
  $case: 'complete',
  scanner: 'harbor',
  counts: { CRITICAL: 0, HIGH: 0, MEDIUM: 2, LOW: 7 },
  fixable: 1,
};

describe('pushedBy', () => {
  let fixture: SigningFixture;
  let pipeline: SigningPipeline;
  beforeAll(async () => {
    fixture = await signingFixture(`
  - name: ci-only
    namespaces: [team-a]
    witness: release
    algorithm: ECDSA_SHA_256
    conditions:
      pushedBy: ['ci-*', 'arn:aws:sts::111122223333:assumed-role/ci-push/*']
  - name: anyone
    namespaces: [team-a]
    witness: release-rsa
    algorithm: RSASSA_PKCS1_V1_5_SHA_256
`);
    pipeline = fixture.pipeline({ clock });
  });
  afterAll(() => fixture.cleanup());

  it('signs a push by a matching pusher and records the pusher in the payload', async () => {
    const digest = await fixture.registry.pushImage('team-a/app', 'v1', 'by-ci');
    const report = await pipeline.handlePush(pushEvent('team-a/app', digest, { pushedBy: 'ci-bot' }));
    expect(byRule(report, 'ci-only')?.status).toBe('signed');
    const [signature] = readSignatures(fixture.registry, 'team-a/app', digest);
    expect(signature?.witness).toBe('release');
    expect(signature?.payload.optional?.[CONDITION_ANNOTATIONS.pushedBy]).toBe('ci-bot');
  });

  it.each([
    ['a pusher no glob matches', 'alice', 'PUSHER_NOT_ALLOWED'],
    ['a pusher matching only within one segment', 'ci-bot/other', 'PUSHER_NOT_ALLOWED'],
    ['no pusher (a registry without auth)', undefined, 'PUSHER_UNKNOWN'],
  ])('does not sign for %s, and says which condition and why', async (_, pushedBy, reason) => {
    const digest = await fixture.registry.pushImage('team-a/app', `v-${reason}-${String(pushedBy)}`);
    const report = await pipeline.handlePush(
      pushEvent('team-a/app', digest, pushedBy === undefined ? {} : { pushedBy }),
    );
    expect(byRule(report, 'ci-only')).toMatchObject({
      status: 'not-signed',
      unmet: { condition: 'pushedBy', reason },
    });
    expect(notSigned(report).map((o) => o.rule)).toEqual(['ci-only']);
    // The rule without conditions still signs; nothing of the refused rule is written.
    expect(readSignatures(fixture.registry, 'team-a/app', digest).map((s) => s.witness)).toEqual([
      'release-rsa',
    ]);
  });

  it('matches an assumed-role session with ** only where the glob says so', async () => {
    const digest = await fixture.registry.pushImage('team-a/app', 'v-role');
    const report = await pipeline.handlePush(
      pushEvent('team-a/app', digest, {
        source: 'cloudtrail',
        pushedBy: 'arn:aws:sts::111122223333:assumed-role/ci-push/build-42',
      }),
    );
    expect(report.outcomes.map((o) => [o.rule, o.status])).toEqual([['ci-only', 'signed']]);
  });

  describe('which event decides which rule on ECR', () => {
    const event = (source: 'ecr' | 'cloudtrail') =>
      pushEvent('team-a/app', `sha256:${'1'.repeat(64)}`, { source });
    const planned = (source: 'ecr' | 'cloudtrail'): string[] => {
      const plan = pipeline.plan(event(source));
      return plan.$case === 'sign' ? plan.rules.map((r) => r.name) : [plan.$case];
    };

    it('the ECR Image Action decides the rules without pushedBy (it names no pusher)', () => {
      expect(planned('ecr')).toEqual(['anyone']);
    });

    it("CloudTrail's PutImage decides only the rules with pushedBy", () => {
      expect(planned('cloudtrail')).toEqual(['ci-only']);
    });
  });

  it('a manual sign knows no pusher: PUSHER_UNKNOWN', async () => {
    const digest = await fixture.registry.pushImage('team-a/app', 'v-manual');
    const report = await pipeline.signImage(parseReference(`${HOST}/team-a/app@${digest}`), 'ci-only');
    expect(report.outcomes).toEqual([
      expect.objectContaining({
        status: 'not-signed',
        unmet: expect.objectContaining({ reason: 'PUSHER_UNKNOWN' }),
      }),
    ]);
  });
});

describe('scan', () => {
  let fixture: SigningFixture;
  let pipeline: SigningPipeline;
  beforeAll(async () => {
    fixture = await signingFixture(
      `
  - name: scanned
    namespaces: [team-a]
    witness: release
    algorithm: ECDSA_SHA_256
    conditions:
      scan: { maxSeverity: MEDIUM, waitSeconds: 600 }
  - name: scanned-unfixed
    namespaces: [team-b]
    witness: release
    algorithm: ECDSA_SHA_256
    conditions:
      scan: { maxSeverity: LOW, ignoreUnfixed: true }
  - name: unconditional
    namespaces: [team-a]
    witness: release-rsa
    algorithm: RSASSA_PKCS1_V1_5_SHA_256
`,
      undefined,
      { registries: `  - host: ${HOST}\n    kind: harbor\n` },
    );
    pipeline = fixture.pipeline({ clock });
  });
  afterAll(() => fixture.cleanup());

  it('waits for the scan: nothing signed by the rule, until firstSeenAt + waitSeconds', async () => {
    const digest = await fixture.registry.pushImage('team-a/app', 'wait');
    const report = await pipeline.handlePush(pushEvent('team-a/app', digest), { firstSeenAt: NOW - 1000 });
    expect(byRule(report, 'scanned')).toMatchObject({
      status: 'waiting',
      waitUntil: NOW - 1000 + 600_000,
      unmet: { condition: 'scan', reason: 'SCAN_PENDING' },
    });
    expect(byRule(report, 'unconditional')?.status).toBe('signed');
    expect(readSignatures(fixture.registry, 'team-a/app', digest).map((s) => s.witness)).toEqual([
      'release-rsa',
    ]);
  });

  it('signs once the scan is clean enough, recording the counts in the payload', async () => {
    const digest = await fixture.registry.pushImage('team-a/app', 'clean');
    const report = await pipeline.handlePush(pushEvent('team-a/app', digest), { scan: clean });
    expect(byRule(report, 'scanned')?.status).toBe('signed');
    const scanned = readSignatures(fixture.registry, 'team-a/app', digest).find(
      (s) => s.witness === 'release',
    );
    expect(scanned?.payload.optional?.[CONDITION_ANNOTATIONS.scan]).toBe(
      'harbor critical=0 high=0 medium=2 low=7 maxSeverity=MEDIUM',
    );
  });

  it('gives the same payload for the same scan: a second delivery is already-signed', async () => {
    const digest = await fixture.registry.pushImage('team-a/app', 'twice');
    await pipeline.handlePush(pushEvent('team-a/app', digest), { scan: clean });
    const again = await pipeline.handlePush(pushEvent('team-a/app', digest), { scan: clean });
    expect(again.outcomes.map((o) => o.status)).toEqual(['already-signed', 'already-signed']);
  });

  it.each<[string, ScanResult, string]>([
    [
      'findings above maxSeverity',
      {
        $case: 'complete',
        scanner: 'harbor',
        counts: { CRITICAL: 1, HIGH: 3, MEDIUM: 0, LOW: 0 },
        fixable: 2,
      },
      'SCAN_FINDINGS',
    ],
    [
      'a failed scan',
      { $case: 'failed', scanner: 'harbor', detail: 'Harbor scan status Error' },
      'SCAN_FAILED',
    ],
  ])('does not sign for %s', async (_, scan, reason) => {
    const digest = await fixture.registry.pushImage('team-a/app', `refused-${reason}`);
    const report = await pipeline.handlePush(pushEvent('team-a/app', digest), { scan });
    expect(byRule(report, 'scanned')).toMatchObject({
      status: 'not-signed',
      unmet: { condition: 'scan', reason },
    });
  });

  it('names the severities that refused it', async () => {
    const digest = await fixture.registry.pushImage('team-a/app', 'detail');
    const report = await pipeline.handlePush(pushEvent('team-a/app', digest), {
      scan: {
        $case: 'complete',
        scanner: 'inspector',
        counts: { CRITICAL: 1, HIGH: 3, MEDIUM: 9, LOW: 0 },
        fixable: undefined,
      },
    });
    expect(byRule(report, 'scanned')?.unmet?.detail).toBe(
      'inspector found 3 HIGH, 1 CRITICAL above maxSeverity MEDIUM',
    );
  });

  describe('ignoreUnfixed', () => {
    const scan = (fixable: number | undefined): ScanResult => ({
      $case: 'complete',
      scanner: 'harbor',
      counts: { CRITICAL: 2, HIGH: 0, MEDIUM: 0, LOW: 0 },
      fixable,
    });

    it('waives findings when the scanner says none is fixable', async () => {
      const digest = await fixture.registry.pushImage('team-b/app', 'unfixed');
      const report = await pipeline.handlePush(pushEvent('team-b/app', digest), { scan: scan(0) });
      expect(byRule(report, 'scanned-unfixed')?.status).toBe('signed');
      const [signature] = readSignatures(fixture.registry, 'team-b/app', digest);
      expect(signature?.payload.optional?.[CONDITION_ANNOTATIONS.scan]).toBe(
        'harbor critical=2 high=0 medium=0 low=0 maxSeverity=LOW ignoreUnfixed fixable=0',
      );
    });

    it.each([
      ['some are fixable', 1],
      ['the scanner does not say (ECR, Inspector)', undefined],
    ])('counts every finding when %s', async (_, fixable) => {
      const digest = await fixture.registry.pushImage('team-b/app', `fixable-${String(fixable)}`);
      const report = await pipeline.handlePush(pushEvent('team-b/app', digest), { scan: scan(fixable) });
      expect(byRule(report, 'scanned-unfixed')?.unmet?.reason).toBe('SCAN_FINDINGS');
    });
  });

  it('reports SCAN_TIMEOUT once waitSeconds have passed since the push', async () => {
    const digest = await fixture.registry.pushImage('team-a/app', 'late');
    const report = await pipeline.handlePush(pushEvent('team-a/app', digest), {
      firstSeenAt: NOW - 600_000,
    });
    expect(byRule(report, 'scanned')).toMatchObject({
      status: 'not-signed',
      unmet: { condition: 'scan', reason: 'SCAN_TIMEOUT' },
    });
  });

  describe('a scan result as an event (stateless edges: the sign Lambda)', () => {
    it('decides only the rules that wait for scans', async () => {
      const digest = await fixture.registry.pushImage('team-a/app', 'scanned-event');
      const scan: ScanEvent = {
        registry: HOST,
        repository: 'team-a/app',
        digest,
        tags: ['scanned-event', 'latest'],
        result: clean,
        id: 'scan-1',
      };
      const report = await pipeline.handleScan(scan);
      expect(report.tag).toBe('scanned-event');
      expect(report.outcomes.map((o) => [o.rule, o.status])).toEqual([['scanned', 'signed']]);
    });
  });

  describe('a manual sign', () => {
    it('has no scan to wait for: SCAN_UNAVAILABLE without a lookup', async () => {
      const digest = await fixture.registry.pushImage('team-a/app', 'manual');
      const report = await pipeline.signImage(parseReference(`${HOST}/team-a/app@${digest}`), 'scanned');
      expect(report.outcomes[0]?.unmet?.reason).toBe('SCAN_UNAVAILABLE');
    });

    it("asks the registry's scanner through the lookup", async () => {
      const digest = await fixture.registry.pushImage('team-a/app', 'manual-lookup');
      const asked: string[] = [];
      const withLookup = fixture.pipeline({
        clock,
        scans: {
          scanResult: (registry, repository, d) => {
            asked.push(`${registry}/${repository}@${d}`);
            return Promise.resolve(clean);
          },
        },
      });
      const report = await withLookup.signImage(parseReference(`${HOST}/team-a/app@${digest}`), 'scanned');
      expect(report.outcomes[0]?.status).toBe('signed');
      expect(asked).toEqual([`${HOST}/team-a/app@${digest}`]);
    });
  });
});

describe('signedBy (countersigning)', () => {
  const REPLICA = 'replica.example.com';
  let fixture: SigningFixture;
  let pipeline: SigningPipeline;
  beforeAll(async () => {
    fixture = await signingFixture(
      `
  - name: promote
    namespaces: [prod]
    registries: [${HOST}]
    witness: release-rsa
    algorithm: RSASSA_PKCS1_V1_5_SHA_256
    signatureType: simple
    conditions:
      signedBy: [release]
      signedIdentity: { type: matchDigest }
  - name: strict
    namespaces: [strict]
    registries: [${HOST}]
    witness: release-rsa
    algorithm: RSASSA_PKCS1_V1_5_SHA_256
    conditions:
      signedBy: [verify-only, release]
  - name: replica
    namespaces: [team-a]
    registries: [${REPLICA}]
    witness: release-rsa
    algorithm: RSASSA_PKCS1_V1_5_SHA_256
    conditions:
      signedBy: [release]
      signedIdentity: { type: remapIdentity, prefix: ${REPLICA}, signedPrefix: ${HOST} }
`,
      undefined,
      { registries: `  - host: ${HOST}\n  - host: ${REPLICA}\n` },
    );
    pipeline = fixture.pipeline({
      clock,
      conditions: new VerifierConditionChecker({
        config: fixture.config,
        registries: fixture.registries,
        keys: fixture.keys,
      }),
    });
  });
  afterAll(() => fixture.cleanup());

  /** An image in dev signed by the dev witness, then copied with its .sig into `repository`. */
  async function devSignedCopy(repository: string, tag: string): Promise<string> {
    const digest = await fixture.registry.pushImage('dev/app', tag);
    await fixture.registry.sign('dev/app', digest, PRIVATE_KEYS.release, { tag });
    await fixture.registry.pushImage(repository, tag, tag);
    const sig = fixture.registry.signatureLayers('dev/app', digest);
    for (const layer of sig) {
      const blob = fixture.registry.blobs.get(`dev/app@${layer.digest}`);
      if (blob !== undefined) fixture.registry.storeBlob(repository, blob);
    }
    await fixture.registry.putSignatureLayers(repository, digest, sig);
    return digest;
  }

  it('countersigns an image the dev witness signed, wherever it was pushed first (matchDigest)', async () => {
    const digest = await devSignedCopy('prod/app', 'v1');
    const report = await pipeline.handlePush(pushEvent('prod/app', digest));
    expect(byRule(report, 'promote')?.status).toBe('signed');
    const signatures = readSignatures(fixture.registry, 'prod/app', digest);
    expect(signatures.map((s) => s.witness)).toEqual(['release', 'release-rsa']);
    const countersigned = signatures[1]?.payload.optional?.[CONDITION_ANNOTATIONS.countersigns] ?? '';
    expect(countersigned).toMatch(
      new RegExp(
        `^witness=release identity=${HOST.replace(/\./g, '\\.')}/dev/app:v1 signature=sha256:[0-9a-f]{64}$`,
      ),
    );
  });

  describe('when the copy pushes the image before its signatures (cosign copy)', () => {
    it('refuses the image push, then countersigns when the .sig push arrives, once', async () => {
      const digest = await fixture.registry.pushImage('dev/app', 'v9');
      await fixture.registry.sign('dev/app', digest, PRIVATE_KEYS.release, { tag: 'v9' });
      await fixture.registry.pushImage('prod/app', 'v9', 'v9');
      const first = await pipeline.handlePush(pushEvent('prod/app', digest, { tag: 'v9' }));
      expect(byRule(first, 'promote')?.unmet?.detail).toMatch(/^NO_SIGNATURES/);

      const layers = fixture.registry.signatureLayers('dev/app', digest);
      for (const layer of layers) {
        const blob = fixture.registry.blobs.get(`dev/app@${layer.digest}`);
        if (blob !== undefined) fixture.registry.storeBlob('prod/app', blob);
      }
      await fixture.registry.putSignatureLayers('prod/app', digest, layers);
      const sigPush = pushEvent('prod/app', `sha256:${'5'.repeat(64)}`, {
        tag: `${digest.replace(':', '-')}.sig`,
      });
      const plan = pipeline.plan(sigPush);
      expect(plan).toMatchObject({ $case: 'sign', redrive: { digest, tag: undefined } });
      const redriven = await pipeline.handlePush(sigPush);
      expect(redriven.digest).toBe(digest);
      expect(redriven.outcomes.map((o) => [o.rule, o.status])).toEqual([['promote', 'signed']]);

      // Signet's own .sig write is a signature push too: the witness is there, nothing is added.
      const again = await pipeline.handlePush(sigPush);
      expect(again.outcomes.map((o) => [o.rule, o.status])).toEqual([['promote', 'already-signed']]);
      expect(readSignatures(fixture.registry, 'prod/app', digest).map((s) => s.witness)).toEqual([
        'release',
        'release-rsa',
      ]);
    });

    it('skips a signature push no countersigning rule covers', () => {
      const sigPush = pushEvent('dev/app', `sha256:${'5'.repeat(64)}`, {
        tag: `sha256-${'6'.repeat(64)}.sig`,
      });
      expect(pipeline.plan(sigPush)).toEqual({ $case: 'skip', reason: 'signature artifact tag' });
      const attestation = pushEvent('prod/app', `sha256:${'5'.repeat(64)}`, {
        tag: `sha256-${'6'.repeat(64)}.att`,
      });
      expect(pipeline.plan(attestation)).toEqual({ $case: 'skip', reason: 'signature artifact tag' });
    });
  });

  it('refuses an unsigned image pushed straight into prod: NOT_COUNTERSIGNED (NO_SIGNATURES)', async () => {
    const digest = await fixture.registry.pushImage('prod/app', 'unsigned');
    const report = await pipeline.handlePush(pushEvent('prod/app', digest, { tag: 'unsigned' }));
    expect(byRule(report, 'promote')).toMatchObject({
      status: 'not-signed',
      unmet: {
        condition: 'signedBy',
        reason: 'NOT_COUNTERSIGNED',
        detail: expect.stringMatching(/^NO_SIGNATURES/),
      },
    });
    expect(fixture.registry.signatureLayers('prod/app', digest)).toEqual([]);
  });

  it('under matchRepository, a dev signature copied into another repository does not count', async () => {
    const digest = await devSignedCopy('strict/app', 'v2');
    const report = await pipeline.handlePush(pushEvent('strict/app', digest, { tag: 'v2' }));
    expect(byRule(report, 'strict')).toMatchObject({
      status: 'not-signed',
      unmet: {
        reason: 'NOT_COUNTERSIGNED',
        detail: expect.stringMatching(/IDENTITY_MISMATCH|INSUFFICIENT_WITNESSES/),
      },
    });
  });

  it('countersigns a replica under another host with remapIdentity', async () => {
    const replica = fixture.registries.client(REPLICA);
    const digest = await fixture.registry.pushImage('team-a/app', 'v3');
    await fixture.registry.sign('team-a/app', digest, PRIVATE_KEYS.release, { tag: 'v3' });
    // Replication copies the image and its .sig manifest, blobs included.
    await replica.pushImage('team-a/app', 'v3');
    for (const layer of fixture.registry.signatureLayers('team-a/app', digest)) {
      const blob = fixture.registry.blobs.get(`team-a/app@${layer.digest}`);
      if (blob !== undefined) replica.storeBlob('team-a/app', blob);
    }
    await replica.putSignatureLayers(
      'team-a/app',
      digest,
      fixture.registry.signatureLayers('team-a/app', digest),
    );
    const report = await pipeline.handlePush(
      pushEvent('team-a/app', digest, { registry: REPLICA, tag: 'v3' }),
    );
    expect(report.outcomes.map((o) => [o.rule, o.status])).toEqual([['replica', 'signed']]);
    expect(readSignatures(replica, 'team-a/app', digest).map((s) => s.witness)).toEqual([
      'release',
      'release-rsa',
    ]);
  });

  it('fails transiently (retried) when the signatures cannot be read', async () => {
    const digest = await devSignedCopy('prod/app', 'flaky');
    fixture.registry.fail = (call) =>
      call.startsWith('GET manifest prod/app:sha256-')
        ? new RegistryError('UNAVAILABLE', HOST, '503')
        : undefined;
    try {
      const report = await pipeline.handlePush(pushEvent('prod/app', digest, { tag: 'flaky' }));
      expect(byRule(report, 'promote')).toMatchObject({ status: 'failed', errorCode: CONDITION_UNAVAILABLE });
    } finally {
      fixture.registry.fail = () => undefined;
    }
  });

  it('fails the rule, not the push, when no checker is wired', async () => {
    const digest = await devSignedCopy('prod/app', 'unwired');
    const report = await fixture
      .pipeline({ clock })
      .handlePush(pushEvent('prod/app', digest, { tag: 'unwired' }));
    expect(byRule(report, 'promote')).toMatchObject({ status: 'failed', errorCode: 'INTERNAL' });
  });
});
