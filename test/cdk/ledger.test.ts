/**
 * The ledger table and scheduled re-verification in the `SigningService` construct: the table's
 * billing, TTL, recovery and indexes (the ones `lib/ledger` queries), each function's least
 * privilege on it, the re-verification function and its EventBridge Scheduler schedule. Two
 * stacks, synthesized in-process with bundling skipped: aws.yaml (no `reverify`: a table, no
 * schedule) and aws-reverify.yaml (the same with `reverify`). cdk-nag runs over the app.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { App, Validations } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { SignetStack } from '../../cdk/signet-stack';
import { LEDGER_TABLE_SCHEMA } from '../../lib/ledger/dynamodb-schema';

const ROOT = path.resolve(__dirname, '..', '..');
const FIXTURES = path.join(__dirname, 'fixtures');
const ACCOUNT = '123456789012';
const REGION = 'us-east-1';
const ARCHIVE_KEY = `arn:aws:kms:${REGION}:${ACCOUNT}:key/0b8c1d2e-3f40-4a5b-8c6d-7e8f9a0b1c2d`;
const PARTNER_KEY = `arn:aws:kms:${REGION}:${ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab`;

type Statement = { Action: string | string[]; Resource: unknown; Effect: string };

function newApp(): App {
  const cdkJson = JSON.parse(readFileSync(path.join(ROOT, 'cdk.json'), 'utf8')) as {
    context: Record<string, unknown>;
  };
  return new App({ context: { ...cdkJson.context, 'aws:cdk:bundling-stacks': [] } });
}

function stack(app: App, id: string, configFile: string): SignetStack {
  return new SignetStack(app, id, {
    configFile,
    env: { account: ACCOUNT, region: REGION },
    keys: { release: { keySpec: 'ECC_NIST_P256' }, archive: { existingKeyArn: ARCHIVE_KEY } },
    registryNamespaces: ['team-a', 'sandbox'],
    repositories: ['payments/api'],
  });
}

/** Every statement of the policies attached to the role whose logical id starts with `prefix`. */
function statementsOf(template: Template, rolePrefix: string): Statement[] {
  return Object.values(template.findResources('AWS::IAM::Policy'))
    .filter((policy) =>
      (policy['Properties'].Roles as { Ref: string }[]).some((role) => role.Ref.startsWith(rolePrefix)),
    )
    .flatMap((policy) => policy['Properties'].PolicyDocument.Statement as Statement[]);
}

const actionsOf = (statement: Statement): string[] =>
  Array.isArray(statement.Action) ? statement.Action : [statement.Action];

const ledgerStatements = (statements: Statement[]): Statement[] =>
  statements.filter((s) => actionsOf(s).some((a) => a.startsWith('dynamodb:')));

let plain: Template;
let reverify: Template;
let tableId: string;

beforeAll(() => {
  const app = newApp();
  const a = stack(app, 'Plain', path.join(FIXTURES, 'aws.yaml'));
  const b = stack(app, 'Reverify', path.join(FIXTURES, 'aws-reverify.yaml'));
  // Template.fromStack throws ValidationFailed when a cdk-nag finding is left unacknowledged.
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  plain = Template.fromStack(a);
  reverify = Template.fromStack(b);
  tableId = Object.keys(reverify.findResources('AWS::DynamoDB::Table'))[0] as string;
});

const tableArn = () => ({ 'Fn::GetAtt': [tableId, 'Arn'] });

describe('the ledger table', () => {
  it('is on demand, with TTL, point-in-time recovery and encryption, kept and deletion-protected', () => {
    for (const template of [plain, reverify]) {
      template.resourceCountIs('AWS::DynamoDB::Table', 1);
      template.hasResourceProperties('AWS::DynamoDB::Table', {
        BillingMode: 'PAY_PER_REQUEST',
        KeySchema: [
          { AttributeName: LEDGER_TABLE_SCHEMA.partitionKey, KeyType: 'HASH' },
          { AttributeName: LEDGER_TABLE_SCHEMA.sortKey, KeyType: 'RANGE' },
        ],
        TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true },
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
        SSESpecification: { SSEEnabled: true },
        DeletionProtectionEnabled: true,
      });
      template.hasResource('AWS::DynamoDB::Table', {
        DeletionPolicy: 'Retain',
        UpdateReplacePolicy: 'Retain',
      });
    }
  });

  it('has the indexes the ledger queries, projecting whole items', () => {
    const indexes = Object.entries(LEDGER_TABLE_SCHEMA.indexes).map(([name, keys]) =>
      Match.objectLike({
        IndexName: name,
        KeySchema: [
          { AttributeName: keys.partitionKey, KeyType: 'HASH' },
          { AttributeName: keys.sortKey, KeyType: 'RANGE' },
        ],
        Projection: { ProjectionType: 'ALL' },
      }),
    );
    reverify.hasResourceProperties('AWS::DynamoDB::Table', {
      GlobalSecondaryIndexes: Match.arrayWith(indexes),
    });
  });

  it('is named to the sign and verify functions and in the stack outputs', () => {
    for (const description of ['signs pushed ECR images', 'admission and verify endpoint']) {
      reverify.hasResourceProperties('AWS::Lambda::Function', {
        Description: Match.stringLikeRegexp(description),
        Environment: { Variables: Match.objectLike({ SIGNET_LEDGER_TABLE: { Ref: tableId } }) },
      });
    }
    reverify.hasOutput('*', { Value: { Ref: tableId } });
  });
});

describe('least privilege on the ledger', () => {
  it('lets the sign function put items (one conditional put per signature) on the table only', () => {
    const statements = ledgerStatements(statementsOf(reverify, 'SignetSignRole'));
    expect(statements).toHaveLength(1);
    expect(actionsOf(statements[0] as Statement)).toEqual(['dynamodb:PutItem']);
    expect(statements[0]?.Resource).toEqual(tableArn());
  });

  it('lets the verify function batch-write decisions, and read nothing', () => {
    const statements = ledgerStatements(statementsOf(reverify, 'SignetVerifyRole'));
    expect(statements).toHaveLength(1);
    expect(actionsOf(statements[0] as Statement)).toEqual(['dynamodb:BatchWriteItem']);
    expect(statements[0]?.Resource).toEqual(tableArn());
  });

  it('lets re-verification query the table (no index) and write findings, nothing else', () => {
    const statements = ledgerStatements(statementsOf(reverify, 'SignetReverifyRole'));
    expect(statements).toHaveLength(1);
    expect(actionsOf(statements[0] as Statement).sort()).toEqual([
      'dynamodb:BatchWriteItem',
      'dynamodb:Query',
    ]);
    expect(statements[0]?.Resource).toEqual(tableArn());
  });

  it('gives no function a delete, a scan or an index', () => {
    const all = Object.values(reverify.findResources('AWS::IAM::Policy')).flatMap(
      (policy) => policy['Properties'].PolicyDocument.Statement as Statement[],
    );
    const actions = all.flatMap(actionsOf).filter((a) => a.startsWith('dynamodb:'));
    for (const forbidden of ['dynamodb:DeleteItem', 'dynamodb:Scan', 'dynamodb:*', 'dynamodb:UpdateItem'])
      expect(actions).not.toContain(forbidden);
    expect(JSON.stringify(ledgerStatements(all))).not.toContain('/index/');
  });
});

describe('scheduled re-verification', () => {
  it('exists only when the configuration has reverify', () => {
    expect(Object.keys(plain.findResources('AWS::Lambda::Function'))).toHaveLength(3);
    plain.resourceCountIs('AWS::Scheduler::Schedule', 0);
    expect(Object.keys(reverify.findResources('AWS::Lambda::Function'))).toHaveLength(4);
    reverify.resourceCountIs('AWS::Scheduler::Schedule', 1);
  });

  it('runs one round at a time, dropping a tick that finds it busy', () => {
    reverify.hasResourceProperties('AWS::Lambda::Function', {
      Description: Match.stringLikeRegexp('re-verifies admitted images'),
      ReservedConcurrentExecutions: 1,
      Runtime: 'nodejs22.x',
      Architectures: ['arm64'],
      Environment: {
        Variables: Match.objectLike({
          SIGNET_LEDGER_TABLE: { Ref: tableId },
          SIGNET_CONFIG_PARAMETER: { Ref: Match.stringLikeRegexp('^SignetConfig') },
          SIGNET_EVENT_BUS: { 'Fn::GetAtt': [Match.stringLikeRegexp('^SignetBus'), 'Arn'] },
        }),
      },
    });
    reverify.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
      FunctionName: { Ref: Match.stringLikeRegexp('^SignetReverifyFunction') },
      MaximumRetryAttempts: 0,
      MaximumEventAgeInSeconds: 60,
    });
  });

  it('is invoked every reverify.intervalSeconds, rounded up to whole minutes', () => {
    reverify.hasResourceProperties('AWS::Scheduler::Schedule', {
      ScheduleExpression: 'rate(3 minutes)',
      State: 'ENABLED',
      Target: Match.objectLike({
        Arn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^SignetReverifyFunction'), 'Arn'] },
        RetryPolicy: { MaximumRetryAttempts: 0, MaximumEventAgeInSeconds: 60 },
      }),
    });
  });

  it('lets the schedule invoke the re-verification function and nothing else', () => {
    const [schedule] = Object.values(reverify.findResources('AWS::Scheduler::Schedule'));
    const roleId = (schedule?.['Properties'].Target.RoleArn as { 'Fn::GetAtt': [string, string] })[
      'Fn::GetAtt'
    ][0];
    const statements = statementsOf(reverify, roleId);
    expect(statements.flatMap(actionsOf)).toEqual(statements.map(() => 'lambda:InvokeFunction'));
    const resources = JSON.stringify(statements.map((s) => s.Resource));
    expect(resources).toMatch(/SignetReverifyFunction/);
    expect(resources).not.toMatch(/SignetVerifyFunction|SignetSignFunction|"\*"/);
    reverify.hasResourceProperties('AWS::IAM::Role', {
      AssumeRolePolicyDocument: {
        Statement: [
          Match.objectLike({
            Principal: { Service: 'scheduler.amazonaws.com' },
            Condition: { StringEquals: { 'aws:SourceAccount': ACCOUNT } },
          }),
        ],
      },
    });
  });

  it('reads what the verify function reads and puts events on the one bus', () => {
    const statements = statementsOf(reverify, 'SignetReverifyRole');
    const of = (action: string) => statements.filter((s) => actionsOf(s).includes(action));
    const verifyRead = statementsOf(reverify, 'SignetVerifyRole').find((s) =>
      actionsOf(s).includes('ecr:BatchGetImage'),
    );
    expect(of('ecr:BatchGetImage')[0]?.Resource).toEqual(verifyRead?.Resource);
    expect(actionsOf(of('ecr:BatchGetImage')[0] as Statement)).not.toContain('ecr:PutImage');
    expect(statements.flatMap(actionsOf)).not.toContain('kms:Sign');
    expect(of('kms:GetPublicKey')[0]?.Resource).toEqual([
      { 'Fn::GetAtt': [expect.stringMatching(/^SignetKeysrelease/), 'Arn'] },
      PARTNER_KEY,
    ]);
    expect(of('events:PutEvents')[0]?.Resource).toEqual({
      'Fn::GetAtt': [expect.stringMatching(/^SignetBus/), 'Arn'],
    });
    expect(statements.flatMap(actionsOf)).not.toContain('secretsmanager:GetSecretValue');
  });

  it('alarms when an admitted image loses trust', () => {
    plain.resourceCountIs('AWS::CloudWatch::Alarm', 4);
    reverify.resourceCountIs('AWS::CloudWatch::Alarm', 5);
    reverify.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'TrustLost',
      Namespace: 'Signet',
      Threshold: 1,
    });
  });
});
