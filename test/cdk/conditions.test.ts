/**
 * The EventBridge rules (and grants) that signing conditions need, synthesized in-process with
 * bundling skipped: present only when an enabled automatic rule has the condition, and matching
 * the events AWS sends (test/fixtures/events, put into covered repositories) and nothing else.
 * Patterns are matched with a small evaluator of EventBridge's pattern rules (exact values,
 * `prefix`, `suffix`, `wildcard`, `anything-but`, `exists`), over the patterns as synthesized.
 */
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { App, Validations } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { SignetStack } from '../../cdk/signet-stack';

const ROOT = path.resolve(__dirname, '..', '..');
const FIXTURES = path.join(__dirname, 'fixtures');
const EVENTS = path.join(ROOT, 'test', 'fixtures', 'events');
const ACCOUNT = '123456789012';
const REGION = 'us-east-1';
const DEV_KEY = `arn:aws:kms:${REGION}:${ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab`;

function newApp(): App {
  const cdkJson = JSON.parse(readFileSync(path.join(ROOT, 'cdk.json'), 'utf8')) as {
    context: Record<string, unknown>;
  };
  return new App({ context: { ...cdkJson.context, 'aws:cdk:bundling-stacks': [] } });
}

// --- A small EventBridge pattern evaluator -------------------------------------------------------

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

const isObject = (value: unknown): value is JsonObject =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

const wildcard = (pattern: string): RegExp =>
  new RegExp(
    `^${pattern
      .split('*')
      .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
      .join('.*')}$`,
  );

/** Whether one leaf value of an event satisfies one entry of a pattern's array. */
function leafMatches(entry: Json, value: Json | undefined): boolean {
  if (!isObject(entry)) return value !== undefined && value === entry;
  if ('exists' in entry) return entry['exists'] === (value !== undefined);
  if (value === undefined) return false;
  // `anything-but` takes a list of prefixes or suffixes: any of them.
  const list = (key: string): string[] | undefined => {
    const given = entry[key];
    if (typeof given === 'string') return [given];
    return Array.isArray(given) ? given.map(String) : undefined;
  };
  const prefixes = list('prefix');
  if (prefixes !== undefined) return typeof value === 'string' && prefixes.some((p) => value.startsWith(p));
  const suffixes = list('suffix');
  if (suffixes !== undefined) return typeof value === 'string' && suffixes.some((x) => value.endsWith(x));
  if (typeof entry['wildcard'] === 'string')
    return typeof value === 'string' && wildcard(entry['wildcard']).test(value);
  if ('anything-but' in entry) {
    const but = entry['anything-but'];
    if (isObject(but)) return !leafMatches(but, value);
    return !(Array.isArray(but) ? but : [but]).includes(value);
  }
  throw new Error(`pattern entry not understood by this evaluator: ${JSON.stringify(entry)}`);
}

/** EventBridge's matching: every pattern field must match; arrays in the event match by any element. */
function matches(pattern: JsonObject, event: JsonObject): boolean {
  return Object.entries(pattern).every(([field, expected]) => {
    const value = event[field];
    if (isObject(expected)) return isObject(value) && matches(expected, value);
    const entries = expected as Json[];
    const values = Array.isArray(value) ? value : [value];
    if (Array.isArray(value) && value.length === 0) return entries.some((e) => leafMatches(e, undefined));
    return values.some((v) => entries.some((e) => leafMatches(e, v)));
  });
}

describe('the pattern evaluator (checked on the cases the patterns rely on)', () => {
  it('matches exact values, prefixes, suffixes, wildcards, anything-but and exists', () => {
    expect(matches({ a: ['x'] }, { a: 'x' })).toBe(true);
    expect(matches({ a: ['x'] }, { a: 'y' })).toBe(false);
    expect(matches({ a: [{ prefix: 'team-a/' }] }, { a: 'team-a/app' })).toBe(true);
    expect(matches({ a: [{ suffix: ':repository/p/api' }] }, { a: 'arn:x:repository/p/api' })).toBe(true);
    expect(matches({ a: [{ wildcard: '*:repository/ns/*' }] }, { a: 'arn:x:repository/ns/a/b' })).toBe(true);
    expect(matches({ a: [{ wildcard: '*:repository/ns/*' }] }, { a: 'arn:x:repository/other/a' })).toBe(
      false,
    );
    expect(matches({ a: [{ 'anything-but': { suffix: ['.sig'] } }] }, { a: 'v1' })).toBe(true);
    expect(matches({ a: [{ 'anything-but': { suffix: ['.att', '.sig'] } }] }, { a: 'sha256-1.sig' })).toBe(
      false,
    );
    expect(matches({ a: [{ exists: false }] }, {})).toBe(true);
    expect(matches({ a: [{ exists: false }] }, { a: 'x' })).toBe(false);
    expect(matches({ a: { b: ['x'] } }, { a: 'x' })).toBe(false);
  });
});

// --- Stacks --------------------------------------------------------------------------------------

let dir: string;
let without: Template;
let withAll: Template;
let scanOnly: Template;

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'signet-cdk-conditions-'));
  const scanOnlyFile = path.join(dir, 'scan-only.yaml');
  writeFileSync(
    scanOnlyFile,
    `
registries:
  - host: ${ACCOUNT}.dkr.ecr.${REGION}.amazonaws.com
witnesses:
  - name: release
    key: awskms:///alias/signet-release
signingRules:
  - name: scanned
    repositories: [payments/api]
    witness: release
    algorithm: ECDSA_SHA_256
    conditions:
      scan: { maxSeverity: HIGH }
  # A disabled rule's conditions need no events.
  - name: ci-only
    namespaces: [team-a]
    witness: release
    algorithm: ECDSA_SHA_256
    enabled: false
    conditions:
      pushedBy: ['arn:aws:iam::${ACCOUNT}:role/ci']
`,
  );
  const app = newApp();
  const common = {
    env: { account: ACCOUNT, region: REGION },
    keys: { release: { keySpec: 'ECC_NIST_P256' as const } },
    registryNamespaces: ['team-a', 'prod'],
    repositories: ['payments/api'],
  };
  const plain = new SignetStack(app, 'Plain', {
    ...common,
    configFile: path.join(FIXTURES, 'aws.yaml'),
    keys: undefined,
  });
  const all = new SignetStack(app, 'Conditions', {
    ...common,
    configFile: path.join(FIXTURES, 'aws-conditions.yaml'),
  });
  const scan = new SignetStack(app, 'ScanOnly', { ...common, configFile: scanOnlyFile });
  // The app as cdk/app.ts builds it: an unacknowledged cdk-nag finding fails the synth.
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  without = Template.fromStack(plain);
  withAll = Template.fromStack(all);
  scanOnly = Template.fromStack(scan);
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface RuleResource {
  readonly id: string;
  readonly pattern: JsonObject;
}

function rulesOf(template: Template): RuleResource[] {
  return Object.entries(template.findResources('AWS::Events::Rule')).map(([id, rule]) => ({
    id,
    pattern: rule['Properties'].EventPattern as JsonObject,
  }));
}

/** The logical ids of the rules whose pattern matches `event`. */
const matching = (template: Template, event: JsonObject): string[] =>
  rulesOf(template)
    .filter((rule) => matches(rule.pattern, event))
    .map((rule) => rule.id.replace(/^Signet/, '').replace(/[0-9A-F]{8}$/, ''));

function fixture(name: string): JsonObject {
  const event = JSON.parse(readFileSync(path.join(EVENTS, `${name}.json`), 'utf8')) as JsonObject;
  return { ...event, account: ACCOUNT, region: REGION };
}

/** A fixture with some `detail` fields replaced (a nested object is merged one level deep). */
function withDetail(event: JsonObject, changes: JsonObject): JsonObject {
  const detail = event['detail'] as JsonObject;
  const merged: JsonObject = { ...detail };
  for (const [field, value] of Object.entries(changes)) {
    const current = detail[field];
    merged[field] = isObject(current) && isObject(value) ? { ...current, ...value } : value;
  }
  return { ...event, detail: merged };
}

const putImage = (repository: string, extra: JsonObject = {}) =>
  withDetail(fixture('cloudtrail-ecr-putimage'), {
    requestParameters: { repositoryName: repository },
    ...extra,
  });
const ecrPush = (repository: string) =>
  withDetail(fixture('ecr-push-tag'), { 'repository-name': repository });
const ecrScan = (repository: string) =>
  withDetail(fixture('ecr-image-scan'), { 'repository-name': repository });
const inspectorScan = (repository: string) =>
  withDetail(fixture('inspector2-scan'), {
    'repository-name': `arn:aws:ecr:${REGION}:${ACCOUNT}:repository/${repository}`,
  });
const signaturePush = (repository: string) =>
  withDetail(fixture('ecr-push-cosign-signature'), { 'repository-name': repository });

// --- The tests -----------------------------------------------------------------------------------

describe('when no rule has conditions', () => {
  it('adds the push rule only', () => {
    expect(rulesOf(without)).toHaveLength(1);
    expect(matching(without, ecrPush('team-a/app'))).toEqual(['PushRule']);
    for (const event of [putImage('team-a/app'), ecrScan('payments/api'), inspectorScan('payments/api')])
      expect(matching(without, event)).toEqual([]);
  });

  it('lets EventBridge invoke the sign function for that rule only', () => {
    without.resourcePropertiesCountIs(
      'AWS::Lambda::Permission',
      { Principal: 'events.amazonaws.com', Action: 'lambda:InvokeFunction' },
      1,
    );
  });
});

describe('when rules use pushedBy, scan and signedBy', () => {
  it('adds a rule per event kind the conditions need, beside the push rule', () => {
    expect(
      rulesOf(withAll)
        .map((r) => r.id.replace(/[0-9A-F]{8}$/, ''))
        .sort(),
    ).toEqual(
      [
        'SignetEcrScanRule',
        'SignetInspectorScanRule',
        'SignetPushRule',
        'SignetPusherRule',
        'SignetSignatureRule',
      ].sort(),
    );
  });

  describe('each fixture event reaches exactly its rule', () => {
    it.each([
      ['CloudTrail PutImage', () => putImage('team-a/app'), 'PusherRule'],
      ['ECR Image Action', () => ecrPush('team-a/app'), 'PushRule'],
      ['ECR Image Scan', () => ecrScan('payments/api'), 'EcrScanRule'],
      ['Inspector2 Scan (exact repository)', () => inspectorScan('payments/api'), 'InspectorScanRule'],
      ['Inspector2 Scan (namespace)', () => inspectorScan('prod/web/api'), 'InspectorScanRule'],
      ['a pushed cosign signature', () => signaturePush('prod/app'), 'SignatureRule'],
    ])('%s', (_name, event, rule) => {
      expect(matching(withAll, event())).toEqual([rule]);
    });
  });

  it('ignores the same events for repositories the deployment does not cover', () => {
    for (const event of [
      putImage('my-repository-name'),
      ecrScan('my-repository-name'),
      fixture('inspector2-scan'),
      inspectorScan('team-ab/app'),
      inspectorScan('payments/api-v2'),
      signaturePush('elsewhere/app'),
    ])
      expect(matching(withAll, event)).toEqual([]);
  });

  it('ignores failed PutImage calls and pushes of signature tags', () => {
    const failed = putImage('team-a/app', { errorCode: 'ImageAlreadyExistsException' });
    const signature = putImage('team-a/app', {
      requestParameters: { repositoryName: 'team-a/app', imageTag: `sha256-${'a'.repeat(64)}.sig` },
    });
    expect(matching(withAll, failed)).toEqual([]);
    expect(matching(withAll, signature)).toEqual([]);
    // A push by digest names no tag.
    const byDigest = fixture('cloudtrail-ecr-putimage');
    const detail = byDigest['detail'] as JsonObject;
    const { imageTag: _tag, ...request } = detail['requestParameters'] as JsonObject;
    expect(
      matching(withAll, {
        ...byDigest,
        detail: { ...detail, requestParameters: { ...request, repositoryName: 'team-a/app' } },
      }),
    ).toEqual(['PusherRule']);
  });

  it('targets the sign function as the push rule does, with the dead-letter queue', () => {
    const [dlq] = Object.keys(withAll.findResources('AWS::SQS::Queue'));
    for (const { id } of rulesOf(withAll)) {
      const rule = withAll.findResources('AWS::Events::Rule')[id];
      expect(rule?.['Properties'].Targets).toEqual([
        expect.objectContaining({
          Arn: { 'Fn::GetAtt': [expect.stringMatching(/^SignetSignFunction/), 'Arn'] },
          DeadLetterConfig: { Arn: { 'Fn::GetAtt': [dlq, 'Arn'] } },
          RetryPolicy: { MaximumRetryAttempts: 8, MaximumEventAgeInSeconds: 6 * 3600 },
        }),
      ]);
    }
  });

  it('lets EventBridge invoke the sign function for each rule, and only for those', () => {
    for (const { id } of rulesOf(withAll)) {
      withAll.hasResourceProperties('AWS::Lambda::Permission', {
        Principal: 'events.amazonaws.com',
        Action: 'lambda:InvokeFunction',
        FunctionName: { 'Fn::GetAtt': [Match.stringLikeRegexp('^SignetSignFunction'), 'Arn'] },
        SourceArn: { 'Fn::GetAtt': [id, 'Arn'] },
      });
    }
    withAll.resourcePropertiesCountIs('AWS::Lambda::Permission', { Principal: 'events.amazonaws.com' }, 5);
  });

  it('lets each rule dead-letter into the queue', () => {
    const [policy] = Object.values(withAll.findResources('AWS::SQS::QueuePolicy'));
    const sources = (policy?.['Properties'].PolicyDocument.Statement as { Condition?: unknown }[]).map(
      (statement) => JSON.stringify(statement.Condition),
    );
    for (const { id } of rulesOf(withAll)) expect(sources.some((s) => s.includes(id))).toBe(true);
  });

  it("lets the sign function read the signedBy witness's public key, and not sign with it", () => {
    const statements = Object.values(withAll.findResources('AWS::IAM::Policy'))
      .filter((p) =>
        (p['Properties'].Roles as { Ref: string }[]).some((r) => r.Ref.startsWith('SignetSignRole')),
      )
      .flatMap(
        (p) => p['Properties'].PolicyDocument.Statement as { Action: string | string[]; Resource: unknown }[],
      );
    const on = (resource: unknown) =>
      statements.filter((s) => JSON.stringify(s.Resource).includes(JSON.stringify(resource).slice(1, -1)));
    const dev = on(DEV_KEY);
    expect(dev).toHaveLength(1);
    expect([dev[0]!.Action].flat().sort()).toEqual(['kms:DescribeKey', 'kms:GetPublicKey']);
  });
});

describe('when only a scan condition is in use', () => {
  it('adds the scan rules and neither the CloudTrail nor the signature rule', () => {
    expect(
      rulesOf(scanOnly)
        .map((r) => r.id.replace(/[0-9A-F]{8}$/, ''))
        .sort(),
    ).toEqual(['SignetEcrScanRule', 'SignetInspectorScanRule', 'SignetPushRule']);
    expect(matching(scanOnly, putImage('team-a/app'))).toEqual([]);
    expect(matching(scanOnly, signaturePush('prod/app'))).toEqual([]);
    expect(matching(scanOnly, ecrScan('payments/api'))).toEqual(['EcrScanRule']);
  });

  it('grants no key beyond the signing witness', () => {
    const kmsResources = Object.values(scanOnly.findResources('AWS::IAM::Policy'))
      .flatMap(
        (p) => p['Properties'].PolicyDocument.Statement as { Action: string | string[]; Resource: unknown }[],
      )
      .filter((s) => [s.Action].flat().some((a) => a.startsWith('kms:')))
      .map((s) => JSON.stringify(s.Resource));
    expect(kmsResources.join()).not.toContain(DEV_KEY);
  });
});
