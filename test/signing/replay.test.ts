/** Planning a dead letter's replay: every shape in the queue, read without the network. */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { parseConfig } from '../../lib/config/load';
import { isSettled, planReplay, type ReplayResult } from '../../lib/signing/replay';
import { RuleSet } from '../../lib/signing/rules';

const fixture = (name: string): Record<string, unknown> =>
  JSON.parse(readFileSync(path.join(__dirname, '..', 'fixtures', 'events', name), 'utf8'));

const pushEvent = fixture('ecr-push-tag.json');
const ECR_HOST = '123456789012.dkr.ecr.us-west-2.amazonaws.com';

const config = parseConfig(
  `
registries:
  - host: ${ECR_HOST}
    auth: ecr
  - host: 127.0.0.1:5000
    insecure: true
witnesses:
  - name: release
    key: awskms:///alias/signet-release
signingRules:
  - name: mine
    namespaces: [my-repository-name]
    witness: release
    algorithm: ECDSA_SHA_256
  - name: switched-off
    namespaces: [other]
    witness: release
    algorithm: ECDSA_SHA_256
    enabled: false
`,
  { baseDir: '/tmp', env: { AWS_REGION: 'us-west-2' } },
);
const rules = new RuleSet(
  config.signingRules,
  config.registries.map((r) => r.host),
);

describe('planReplay', () => {
  describe('when the body is the original event (failure function, EventBridge target DLQ)', () => {
    it('plans to sign the push with the rules that cover it', () => {
      const plan = planReplay(JSON.stringify(pushEvent), { rules });
      expect(plan).toMatchObject({
        $case: 'sign',
        rules: ['mine'],
        pushes: [
          {
            registry: ECR_HOST,
            repository: 'my-repository-name',
            digest: (pushEvent['detail'] as Record<string, string>)['image-digest'],
            tag: 'latest',
            source: 'ecr',
          },
        ],
      });
    });

    it("writes the sign function's registry host instead of the ECR one when given", () => {
      const plan = planReplay(JSON.stringify(pushEvent), { rules, registryHost: '127.0.0.1:5000' });
      expect(plan).toMatchObject({ $case: 'sign', pushes: [{ registry: '127.0.0.1:5000' }] });
    });
  });

  describe('when the body is a scan result (ECR Image Scan)', () => {
    it('plans to decide the scanned push, counting a scan wait from the event time', () => {
      const scan = fixture('ecr-image-scan.json');
      const plan = planReplay(JSON.stringify(scan), { rules, registryHost: '127.0.0.1:5000' });
      expect(plan).toMatchObject({
        $case: 'sign',
        rules: ['mine'],
        pushes: [],
        scans: [{ registry: '127.0.0.1:5000', repository: 'my-repository-name' }],
        pushedAt: Date.parse(scan['time'] as string),
      });
    });
  });

  describe('when the body is a Lambda invocation record (the failure function gave up)', () => {
    it('plans the record’s requestPayload', () => {
      const record = {
        version: '1.0',
        timestamp: '2026-11-23T10:00:00.000Z',
        requestContext: {
          requestId: 'e2a4c0f2-7f0c-4b8c-9d55-0c7f9a1b2c3d',
          functionArn: 'arn:aws:lambda:us-west-2:123456789012:function:signet-sign:$LATEST',
          condition: 'RetriesExhausted',
          approximateInvokeCount: 3,
        },
        requestPayload: pushEvent,
      };
      expect(planReplay(JSON.stringify(record), { rules })).toMatchObject({ $case: 'sign', rules: ['mine'] });
    });
  });

  describe('when the body is not JSON', () => {
    it('is invalid, naming the body', () => {
      expect(planReplay('{"source": "aws.ecr", ', { rules })).toMatchObject({
        $case: 'invalid',
        field: 'body',
      });
    });
  });

  describe('when the body is JSON but not an ECR Image Action event', () => {
    it('is invalid, naming the field at fault', () => {
      expect(planReplay(JSON.stringify({ ...pushEvent, source: 'aws.s3' }), { rules })).toMatchObject({
        $case: 'invalid',
        field: 'source',
      });
      const badDigest = { ...pushEvent, detail: { ...(pushEvent['detail'] as object), 'image-digest': 'x' } };
      expect(planReplay(JSON.stringify(badDigest), { rules })).toMatchObject({
        $case: 'invalid',
        field: 'detail.image-digest',
      });
    });
  });

  describe('when the event carries nothing to sign', () => {
    it('says why', () => {
      expect(planReplay(JSON.stringify(fixture('ecr-delete.json')), { rules })).toEqual({
        $case: 'nothing-to-sign',
        reasons: [expect.stringContaining('DELETE')],
      });
    });
  });

  describe('when no enabled automatic rule covers the image', () => {
    it('is unmatched, naming the image', () => {
      const other = {
        ...pushEvent,
        detail: { ...(pushEvent['detail'] as object), 'repository-name': 'other/app' },
      };
      expect(planReplay(JSON.stringify(other), { rules })).toEqual({
        $case: 'unmatched',
        images: [expect.stringMatching(new RegExp(`^${ECR_HOST.replace(/\./g, '\\.')}/other/app@sha256:`))],
      });
    });
  });
});

describe('isSettled', () => {
  it('lets a message go only when nothing is left to sign for it', () => {
    const cases: [ReplayResult, boolean][] = [
      [{ $case: 'signed', reports: [] }, true],
      [{ $case: 'nothing-to-sign', reasons: ['ECR "DELETE" action'] }, true],
      [{ $case: 'failed', reports: [] }, false],
      [{ $case: 'invalid', field: 'body', message: 'body: is not valid JSON' }, false],
      [{ $case: 'unmatched', images: ['r/x@sha256:00'] }, false],
    ];
    for (const [result, settled] of cases)
      expect([result.$case, isSettled(result)]).toEqual([result.$case, settled]);
  });
});
