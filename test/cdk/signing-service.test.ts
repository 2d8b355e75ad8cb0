/**
 * The Signet stack, synthesized in-process once per stack (bundling skipped: the CLI synth test
 * covers the real esbuild bundles). Two stacks: the example configuration as `cdk/app.ts`
 * deploys it, and an AWS-shaped configuration (KMS witnesses, explicit coverage) for the
 * least-privilege assertions. cdk-nag's AwsSolutions checks run over the whole app.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { App, Validations } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';
import { SignetStack } from '../../cdk/signet-stack';
import { FUNCTION_METRICS, METRICS_NAMESPACE, SERVICE_NAME } from '../../functions/env';
import { planDeployment } from '../../cdk/plan';
import { ConfigError } from '../../lib/core/errors';

const ROOT = path.resolve(__dirname, '..', '..');
const EXAMPLE = path.join(ROOT, 'test', 'fixtures', 'config', 'mixed.yaml');
const FIXTURES = path.join(__dirname, 'fixtures');
const AWS_CONFIG = path.join(FIXTURES, 'aws.yaml');
const ACCOUNT = '123456789012';
const REGION = 'us-east-1';
const ARCHIVE_KEY = `arn:aws:kms:${REGION}:${ACCOUNT}:key/0b8c1d2e-3f40-4a5b-8c6d-7e8f9a0b1c2d`;
const PARTNER_KEY = `arn:aws:kms:${REGION}:${ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab`;

/** The app context cdk.json gives the CLI, with bundling skipped for speed. */
function newApp(): App {
  const cdkJson = JSON.parse(readFileSync(path.join(ROOT, 'cdk.json'), 'utf8')) as {
    context: Record<string, unknown>;
  };
  return new App({ context: { ...cdkJson.context, 'aws:cdk:bundling-stacks': [] } });
}

type Statement = { Action: string | string[]; Resource: unknown; Effect: string };

/** Every statement of the role policy attached to the role whose logical id starts with `prefix`. */
function statementsOf(template: Template, rolePrefix: string): Statement[] {
  const policies = template.findResources('AWS::IAM::Policy');
  return Object.values(policies)
    .filter((policy) =>
      (policy['Properties'].Roles as { Ref: string }[]).some((role) => role.Ref.startsWith(rolePrefix)),
    )
    .flatMap((policy) => policy['Properties'].PolicyDocument.Statement as Statement[]);
}

const actionsOf = (statement: Statement): string[] =>
  Array.isArray(statement.Action) ? statement.Action : [statement.Action];

function statementWith(statements: Statement[], action: string): Statement {
  const found = statements.filter((s) => actionsOf(s).includes(action));
  expect(found).toHaveLength(1);
  return found[0] as Statement;
}

let app: App;
let example: SignetStack;
let aws: SignetStack;
let exampleTemplate: Template;
let template: Template;

beforeAll(() => {
  app = newApp();
  example = new SignetStack(app, 'Example', { configFile: EXAMPLE });
  aws = new SignetStack(app, 'Aws', {
    configFile: AWS_CONFIG,
    env: { account: ACCOUNT, region: REGION },
    keys: { release: { keySpec: 'ECC_NIST_P256' }, archive: { existingKeyArn: ARCHIVE_KEY } },
    registryNamespaces: ['team-a', 'sandbox'],
    repositories: ['payments/api'],
    alarmEmail: 'ops@example.com',
  });
  // One cdk-nag run over the whole app: Template.fromStack synthesizes with the plugin and
  // throws ValidationFailed when any finding is left unacknowledged.
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  exampleTemplate = Template.fromStack(example);
  template = Template.fromStack(aws);
});

describe('the push rule', () => {
  it('matches successful ECR pushes to the covered repositories, without signature artifacts', () => {
    exampleTemplate.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: {
        source: ['aws.ecr'],
        'detail-type': ['ECR Image Action'],
        detail: {
          'action-type': ['PUSH'],
          result: ['SUCCESS'],
          // The example's enabled automatic rules: team-a and team-c by namespace, team-b/* by glob.
          'repository-name': [{ prefix: 'team-a/' }, { prefix: 'team-b/' }, { prefix: 'team-c/' }],
          'image-tag': [{ 'anything-but': { suffix: ['.sig', '.att', '.sbom'] } }, { exists: false }],
          'artifact-media-type': [
            {
              'anything-but': {
                prefix: Match.arrayWith([
                  'application/vnd.dev.cosign.',
                  'application/vnd.dev.sigstore.bundle',
                  'application/vnd.in-toto',
                ]),
              },
            },
            { exists: false },
          ],
        },
      },
      State: 'ENABLED',
    });
  });

  it('names explicit repositories exactly and namespaces by prefix', () => {
    template.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: {
        detail: Match.objectLike({
          'repository-name': ['payments/api', { prefix: 'team-a/' }, { prefix: 'sandbox/' }],
        }),
      },
    });
  });

  it('invokes the sign function, with the dead-letter queue for undeliverable events', () => {
    const queues = template.findResources('AWS::SQS::Queue');
    const [dlq] = Object.keys(queues);
    template.hasResourceProperties('AWS::Events::Rule', {
      Targets: [
        Match.objectLike({
          Arn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^SignetSignFunction'), 'Arn'] },
          DeadLetterConfig: { Arn: { 'Fn::GetAtt': [dlq, 'Arn'] } },
        }),
      ],
    });
  });
});

describe('the functions', () => {
  it('run Node.js 22 on arm64 with active tracing', () => {
    const functions = template.findResources('AWS::Lambda::Function');
    expect(Object.keys(functions)).toHaveLength(3);
    for (const fn of Object.values(functions)) {
      expect(fn['Properties']).toMatchObject({
        Runtime: 'nodejs22.x',
        Architectures: ['arm64'],
        TracingConfig: { Mode: 'Active' },
        Handler: 'index.handler',
      });
    }
  });

  it('read the configuration from the SSM parameter with a TTL', () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      Description: Match.stringLikeRegexp('signs pushed ECR images'),
      Environment: {
        Variables: Match.objectLike({
          SIGNET_CONFIG_PARAMETER: { Ref: Match.stringLikeRegexp('^SignetConfig') },
          SIGNET_CONFIG_TTL_SECONDS: '60',
          SIGNET_EVENT_BUS: { 'Fn::GetAtt': [Match.stringLikeRegexp('^SignetBus'), 'Arn'] },
        }),
      },
    });
    template.hasResourceProperties('AWS::SSM::Parameter', {
      Type: 'String',
      Tier: 'Standard',
      Value: readFileSync(AWS_CONFIG, 'utf8'),
    });
  });

  it('retry failed signing twice, then hand the event to the failure function', () => {
    template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
      FunctionName: { Ref: Match.stringLikeRegexp('^SignetSignFunction') },
      MaximumRetryAttempts: 2,
      MaximumEventAgeInSeconds: 6 * 3600,
      DestinationConfig: {
        OnFailure: {
          Destination: { 'Fn::GetAtt': [Match.stringLikeRegexp('^SignetFailureFunction'), 'Arn'] },
        },
      },
    });
    const [dlq] = Object.keys(template.findResources('AWS::SQS::Queue'));
    template.hasResourceProperties('AWS::Lambda::Function', {
      Description: Match.stringLikeRegexp('dead-letter queue'),
      DeadLetterConfig: { TargetArn: { 'Fn::GetAtt': [dlq, 'Arn'] } },
    });
  });

  it('keep failed events in an encrypted queue for two weeks', () => {
    template.resourceCountIs('AWS::SQS::Queue', 1);
    template.hasResourceProperties('AWS::SQS::Queue', {
      SqsManagedSseEnabled: true,
      MessageRetentionPeriod: 14 * 24 * 3600,
    });
  });

  it('expose the verify function through a Function URL without IAM auth', () => {
    template.hasResourceProperties('AWS::Lambda::Url', {
      AuthType: 'NONE',
      InvokeMode: 'BUFFERED',
      TargetFunctionArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^SignetVerifyFunction'), 'Arn'] },
    });
    template.hasOutput('*', {
      Value: { 'Fn::GetAtt': [Match.stringLikeRegexp('^SignetVerifyFunctionFunctionUrl'), 'FunctionUrl'] },
    });
  });
});

describe('the keys', () => {
  it('creates an asymmetric SIGN_VERIFY key with the alias the configuration names', () => {
    template.resourceCountIs('AWS::KMS::Key', 1);
    template.hasResourceProperties('AWS::KMS::Key', { KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' });
    template.hasResource('AWS::KMS::Key', { DeletionPolicy: 'Retain' });
    template.hasResourceProperties('AWS::KMS::Alias', { AliasName: 'alias/signet-release' });
  });

  it('sizes the example key for its RSA rule and outputs its ARN', () => {
    exampleTemplate.hasResourceProperties('AWS::KMS::Key', { KeySpec: 'RSA_3072', KeyUsage: 'SIGN_VERIFY' });
    exampleTemplate.hasResourceProperties('AWS::KMS::Alias', { AliasName: 'alias/signet-release' });
    exampleTemplate.hasOutput('*', {
      Value: { 'Fn::GetAtt': [Match.stringLikeRegexp('^SignetKeyskmsrelease'), 'Arn'] },
    });
  });
});

describe('least privilege', () => {
  const releaseKey = () => ({ 'Fn::GetAtt': [expect.stringMatching(/^SignetKeysrelease/), 'Arn'] });
  const repository = (name: string) => `arn:aws:ecr:${REGION}:${ACCOUNT}:repository/${name}`;

  it('lets the sign function sign with the keys of its automatic rules only', () => {
    const sign = statementsOf(template, 'SignetSignRole');
    const kmsStatement = statementWith(sign, 'kms:Sign');
    expect(actionsOf(kmsStatement).sort()).toEqual(['kms:DescribeKey', 'kms:GetPublicKey', 'kms:Sign']);
    // Not the partner key (verify only), not the archive key (manual rule), not a wildcard.
    expect(kmsStatement.Resource).toEqual(releaseKey());
  });

  it('lets the sign function push to the covered repositories only', () => {
    const sign = statementsOf(template, 'SignetSignRole');
    const push = statementWith(sign, 'ecr:PutImage');
    expect(actionsOf(push).sort()).toEqual(
      [
        'ecr:BatchCheckLayerAvailability',
        'ecr:BatchGetImage',
        'ecr:CompleteLayerUpload',
        'ecr:GetDownloadUrlForLayer',
        'ecr:InitiateLayerUpload',
        'ecr:PutImage',
        'ecr:UploadLayerPart',
      ].sort(),
    );
    expect(push.Resource).toEqual([
      repository('payments/api'),
      repository('team-a/*'),
      repository('sandbox/*'),
    ]);
    expect(statementWith(sign, 'ecr:GetAuthorizationToken').Resource).toBe('*');
  });

  it('lets the sign and failure functions put events on the one bus', () => {
    for (const role of ['SignetSignRole', 'SignetFailureRole']) {
      expect(statementWith(statementsOf(template, role), 'events:PutEvents').Resource).toEqual({
        'Fn::GetAtt': [expect.stringMatching(/^SignetBus/), 'Arn'],
      });
    }
    const [dlq] = Object.keys(template.findResources('AWS::SQS::Queue'));
    expect(statementWith(statementsOf(template, 'SignetFailureRole'), 'sqs:SendMessage').Resource).toEqual({
      'Fn::GetAtt': [dlq, 'Arn'],
    });
  });

  it('gives the verify function read-only ECR and public keys of the policy witnesses', () => {
    const verify = statementsOf(template, 'SignetVerifyRole');
    const read = statementWith(verify, 'ecr:BatchGetImage');
    expect(actionsOf(read).sort()).toEqual([
      'ecr:BatchCheckLayerAvailability',
      'ecr:BatchGetImage',
      'ecr:GetDownloadUrlForLayer',
    ]);
    expect(verify.flatMap(actionsOf)).not.toEqual(expect.arrayContaining(['ecr:PutImage']));
    expect(verify.flatMap(actionsOf)).not.toContain('kms:Sign');
    const keys = statementWith(verify, 'kms:GetPublicKey');
    expect(actionsOf(keys).sort()).toEqual(['kms:DescribeKey', 'kms:GetPublicKey']);
    expect(keys.Resource).toEqual([releaseKey(), PARTNER_KEY]);
    expect(statementWith(verify, 'secretsmanager:GetSecretValue').Resource).toEqual({
      Ref: expect.stringMatching(/^SignetVerifyToken/),
    });
  });

  it('lets both functions read the one configuration parameter', () => {
    for (const role of ['SignetSignRole', 'SignetVerifyRole']) {
      const statement = statementWith(statementsOf(template, role), 'ssm:GetParameter');
      expect(actionsOf(statement)).toEqual(['ssm:GetParameter']);
      expect(JSON.stringify(statement.Resource)).toMatch(/:parameter\/.*SignetConfig/);
    }
  });

  it('uses a wildcard resource only for actions that have no resource-level permissions', () => {
    for (const stackTemplate of [template, exampleTemplate]) {
      const all = Object.values(stackTemplate.findResources('AWS::IAM::Policy')).flatMap(
        (policy) => policy['Properties'].PolicyDocument.Statement as Statement[],
      );
      for (const statement of all.filter((s) => s.Resource === '*')) {
        for (const action of actionsOf(statement)) {
          expect([
            'ecr:GetAuthorizationToken',
            'xray:PutTraceSegments',
            'xray:PutTelemetryRecords',
          ]).toContain(action);
        }
      }
    }
  });

  it('grants no KMS use in the example, whose only KMS rule is disabled', () => {
    const all = Object.values(exampleTemplate.findResources('AWS::IAM::Policy')).flatMap(
      (policy) => policy['Properties'].PolicyDocument.Statement as Statement[],
    );
    expect(all.flatMap(actionsOf).filter((a) => a.startsWith('kms:'))).toEqual([]);
  });
});

describe('alarms', () => {
  it('watch sign failures, dead letters, verify errors and verify p99 latency', () => {
    template.resourceCountIs('AWS::CloudWatch::Alarm', 4);
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'Errors',
      Namespace: 'AWS/Lambda',
      Dimensions: [{ Name: 'FunctionName', Value: { Ref: Match.stringLikeRegexp('^SignetSignFunction') } }],
      AlarmActions: [{ Ref: Match.stringLikeRegexp('^Alarms') }],
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Namespace: 'AWS/SQS',
      Threshold: 1,
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Metrics: Match.arrayWith([Match.objectLike({ Expression: 'FILL(errors, 0) + FILL(url5xx, 0)' })]),
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'Duration',
      ExtendedStatistic: 'p99',
      Threshold: 2000,
    });
  });
});

describe('the dashboard', () => {
  /** The dashboard body with its CloudFormation tokens flattened to text. */
  const body = (): string => {
    const [dashboard] = Object.values(template.findResources('AWS::CloudWatch::Dashboard'));
    return JSON.stringify(dashboard?.Properties?.DashboardBody);
  };

  it('is one dashboard', () => {
    template.resourceCountIs('AWS::CloudWatch::Dashboard', 1);
  });

  it('plots every EMF metric the functions emit, in their namespace and service dimension', () => {
    for (const name of Object.values(FUNCTION_METRICS)) {
      expect(body()).toContain(
        `\\"${METRICS_NAMESPACE}\\",\\"${name}\\",\\"service\\",\\"${SERVICE_NAME}\\"`,
      );
    }
  });

  it('shows the dead-letter queue and the status of every alarm', () => {
    expect(body()).toContain('ApproximateNumberOfMessagesVisible');
    expect(body()).toContain('\\"alarms\\":[');
  });
});

describe('synth-time checks', () => {
  it('warns about each rule the Lambda cannot run and each key file a policy needs', () => {
    const warnings = Annotations.fromStack(example).findWarning('*', Match.anyValue());
    const text = warnings.map((w) => JSON.stringify(w.entry.data)).join('\n');
    for (const rule of ['team-a', 'team-b', 'team-c-pss'])
      expect(text).toContain(`signing rule \\"${rule}\\"`);
    expect(text).toContain('policy \\"partner-images\\": witness \\"partner\\" is a key file');
  });

  it('acknowledges every cdk-nag finding it accepts with a reason', () => {
    const acknowledged: { id: string; reason: string }[] = [];
    const visit = (node: IConstruct): void => {
      for (const entry of node.node.metadata) {
        if (entry.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY) {
          for (const [id, reason] of Object.entries(entry.data as Record<string, string>))
            acknowledged.push({ id, reason });
        }
      }
      node.node.children.forEach(visit);
    };
    visit(app);
    expect(acknowledged.map((a) => a.id)).toEqual(
      expect.arrayContaining([
        'AwsSolutions::AwsSolutions-L1',
        'AwsSolutions::AwsSolutions-IAM5[Resource::*]',
      ]),
    );
    for (const ack of acknowledged) expect(ack.reason.length).toBeGreaterThan(40);
  });

  describe('when the configuration file is invalid', () => {
    it('fails with the configuration error, naming the field', () => {
      const build = () =>
        new SignetStack(newApp(), 'Invalid', { configFile: path.join(FIXTURES, 'invalid.yaml') });
      expect(build).toThrowWithCode(ConfigError, 'CONFIG_INVALID');
      expect(build).toThrow(/signingRules\[0\]\.witness \(line 7\): unknown witness "relase"/);
    });
  });

  describe('when the deployment does not fit the configuration', () => {
    const plan = (input: Partial<Parameters<typeof planDeployment>[0]>) => () =>
      planDeployment({
        configFile: AWS_CONFIG,
        registryNamespaces: ['team-a'],
        env: { AWS_REGION: REGION },
        ...input,
      });

    it('lists every problem at once, by field', () => {
      const attempt = plan({
        keys: {
          nobody: { keySpec: 'RSA_2048' },
          laptop: { keySpec: 'RSA_2048' },
          partner: { keySpec: 'RSA_2048' },
          archive: { existingKeyArn: 'alias/signet-archive' },
        },
        repositories: ['Not A Repo'],
      });
      expect(attempt).toThrowWithCode(ConfigError, 'CONFIG_INVALID');
      let issues: readonly { path: string }[] = [];
      try {
        attempt();
      } catch (error) {
        issues = (error as ConfigError).issues;
      }
      expect(issues.map((i) => i.path)).toEqual([
        'repositories[0]',
        'keys.nobody',
        'keys.laptop',
        'keys.partner',
        'keys.archive.existingKeyArn',
        'keys.release',
      ]);
    });

    it('needs some repositories or namespaces', () => {
      expect(plan({ registryNamespaces: [] })).toThrow(/repositories: give the ECR repositories/);
    });
  });
});
