import { CfnOutput, Duration, RemovalPolicy, Stack, Token, Validations } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as destinations from 'aws-cdk-lib/aws-lambda-destinations';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as schedulerTargets from 'aws-cdk-lib/aws-scheduler-targets';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import { Construct, type IConstruct } from 'constructs';
import {
  DEFAULT_CONFIG_TTL_SECONDS,
  FUNCTION_METRICS,
  METRICS_NAMESPACE,
  SERVICE_NAME,
  failureEnvironment,
  reverifyEnvironment,
  signEnvironment,
  verifyEnvironment,
} from '../functions/env';
import { SIGNATURE_ARTIFACT_TYPES } from '../lib/cosign/signature-manifest';
import { ECR_EVENT_SOURCE_HOST, PUT_IMAGE } from '../lib/events/cloudtrail';
import {
  CLOUDTRAIL_API_CALL,
  ECR_EVENT_SOURCE,
  ECR_IMAGE_ACTION,
  ECR_IMAGE_SCAN,
  INSPECTOR_EVENT_SOURCE,
  INSPECTOR_SCAN,
} from '../lib/events/ecr';
import { LEDGER_TABLE_SCHEMA } from '../lib/ledger/dynamodb-schema';
import {
  STANDARD_PARAMETER_BYTES,
  planDeployment,
  type DeploymentPlan,
  type KeySource,
  type WitnessKeyProps,
} from './plan';
import { SignetFunction } from './signet-function';

export type { WitnessKeyProps, WitnessKeySpec } from './plan';

/** How a `SigningService` is deployed. */
export interface SigningServiceProps {
  /**
   * Path of Signet's YAML configuration. It is parsed at synth (an invalid file fails `cdk synth`
   * with the configuration's own errors) and stored verbatim in an SSM String parameter that the
   * functions read at cold start and re-read every `configTtl`.
   */
  readonly configFile: string;
  /**
   * The KMS key of each `awskms://` witness, by witness name: `{ keySpec }` creates an asymmetric
   * SIGN_VERIFY key (carrying the alias the configuration names), `{ existingKeyArn }` uses one.
   * A witness the configuration names by key ARN or key id needs no entry.
   */
  readonly keys?: Readonly<Record<string, WitnessKeyProps>>;
  /** ECR repository names whose pushes are signed (and whose images the verifier may read). */
  readonly repositories?: readonly string[];
  /** Registry namespaces (first path segment, `team-a` for `team-a/app`) covered as a whole. */
  readonly registryNamespaces?: readonly string[];
  /** The bus that receives `Image Signed` / `Image Signing Failed`; default a new bus. */
  readonly eventBus?: events.IEventBus;
  /** Actions of every alarm (an SNS topic action, say); default none. */
  readonly alarmActions?: readonly cloudwatch.IAlarmAction[];
  /**
   * The verify endpoint's token (string secret). Default: a new secret with a random 48-character
   * token. Callers send it as `Authorization: Bearer <token>` or as the first path segment
   * (`<url>/<token>/admission`), for clusters whose apiserver cannot send headers (EKS).
   * An existing secret must hold the token as plain text, be imported by its complete ARN
   * (`Secret.fromSecretCompleteArn`, which the grant names exactly) and use the AWS managed key.
   */
  readonly tokenSecret?: secretsmanager.ISecret;
  /** How long a function keeps a configuration before looking for a new version; default 60 s. */
  readonly configTtl?: Duration;
  /** p99 verify duration above which the latency alarm fires; default 2 s (webhooks time out at 10 s). */
  readonly verifyLatencyThreshold?: Duration;
  /**
   * Registry host written into signatures instead of `<account>.dkr.ecr.<region>.amazonaws.com`
   * (e.g. the dual-stack `<account>.dkr-ecr.<region>.on.aws` your clusters pull from).
   */
  readonly registryHost?: string;
}

// Lambda's own retries of a failed signing event (the maximum), and how long an event may wait.
const SIGN_RETRY_ATTEMPTS = 2;
const SIGN_MAX_EVENT_AGE = Duration.hours(6);
const DEFAULT_CONFIG_TTL = Duration.seconds(DEFAULT_CONFIG_TTL_SECONDS);

/** ECR actions that push a signature manifest and its blobs into a repository. */
export const ECR_PUSH_ACTIONS = [
  'ecr:BatchGetImage',
  'ecr:BatchCheckLayerAvailability',
  'ecr:InitiateLayerUpload',
  'ecr:UploadLayerPart',
  'ecr:CompleteLayerUpload',
  'ecr:PutImage',
  'ecr:GetDownloadUrlForLayer',
];
/** ECR actions that read manifests and blobs. */
export const ECR_READ_ACTIONS = [
  'ecr:BatchGetImage',
  'ecr:GetDownloadUrlForLayer',
  'ecr:BatchCheckLayerAvailability',
];
export const KMS_SIGN_ACTIONS = ['kms:Sign', 'kms:GetPublicKey', 'kms:DescribeKey'];
export const KMS_VERIFY_ACTIONS = ['kms:GetPublicKey', 'kms:DescribeKey'];
/** What each function does to the ledger table: the sign function records signatures once each
 * (a conditional put), the verify function decisions (batches), re-verification reads admitted
 * images and signatures and writes findings. None reads through an index or deletes. */
export const LEDGER_SIGN_ACTIONS = ['dynamodb:PutItem'];
export const LEDGER_VERIFY_ACTIONS = ['dynamodb:BatchWriteItem'];
export const LEDGER_REVERIFY_ACTIONS = ['dynamodb:Query', 'dynamodb:BatchWriteItem'];

/** Tags cosign gives signatures, attestations and SBOMs: `sha256-<hex>.sig` and so on. */
export const SIGNATURE_TAG_SUFFIXES = ['.sig', '.att', '.sbom'];
/** Prefixes of every artifact type Signet treats as a signature artifact. */
export const SIGNATURE_ARTIFACT_PREFIXES = signatureArtifactPrefixes();

/**
 * Signet on AWS: ECR pushes (EventBridge) → the sign function (KMS, cosign signatures written back
 * to ECR, `Image Signed` events) and a verify endpoint (Lambda Function URL) answering Kubernetes
 * admission reviews, both driven by one configuration file.
 */
export class SigningService extends Construct {
  readonly plan: DeploymentPlan;
  readonly signFunction: SignetFunction;
  readonly failureFunction: SignetFunction;
  readonly verifyFunction: SignetFunction;
  /** The ledger: signatures, admission decisions, admitted images, findings. */
  readonly ledgerTable: dynamodb.Table;
  /** Continuous re-verification, when the configuration has `reverify`. */
  readonly reverifyFunction: SignetFunction | undefined;
  readonly reverifySchedule: scheduler.Schedule | undefined;
  private reverifyScheduleRole: iam.Role | undefined;
  readonly webhookUrl: lambda.FunctionUrl;
  readonly eventBus: events.IEventBus;
  readonly pushRule: events.Rule;
  /** CloudTrail's `PutImage` records (who pushed): only when some rule has `pushedBy`. */
  readonly pusherRule: events.Rule | undefined;
  /** `ECR Image Scan` and `Inspector2 Scan` results: only when some rule has `scan`. */
  readonly scanRules: readonly events.Rule[];
  /** Pushed `.sig` manifests, which re-drive their image: only when some rule has `signedBy`. */
  readonly signatureRule: events.Rule | undefined;
  readonly deadLetterQueue: sqs.Queue;
  readonly configParameter: ssm.StringParameter;
  readonly tokenSecret: secretsmanager.ISecret;
  /** The KMS key of each witness the deployment uses or creates. */
  readonly keys: ReadonlyMap<string, kms.IKey>;
  readonly alarms: {
    readonly signFailures: cloudwatch.Alarm;
    readonly deadLetters: cloudwatch.Alarm;
    readonly verifyErrors: cloudwatch.Alarm;
    readonly verifyLatency: cloudwatch.Alarm;
    /** With `reverify`: an admitted image lost trust (a finding opened). */
    readonly trustLost?: cloudwatch.Alarm;
  };
  /** Signing and admission at a glance: the functions' EMF metrics, the queue, the alarms. */
  readonly dashboard: cloudwatch.Dashboard;

  constructor(scope: Construct, id: string, props: SigningServiceProps) {
    super(scope, id);
    this.plan = planDeployment({
      configFile: props.configFile,
      keys: props.keys,
      repositories: props.repositories,
      registryNamespaces: props.registryNamespaces,
      isToken: (value) => Token.isUnresolved(value),
    });
    const plan = this.plan;
    for (const warning of plan.warnings) Validations.of(this).addWarning(warning.id, warning.message);

    const configTtlSeconds = (props.configTtl ?? DEFAULT_CONFIG_TTL).toSeconds();
    this.configParameter = new ssm.StringParameter(this, 'Config', {
      description: `Signet configuration (${props.configFile})`,
      stringValue: plan.configText,
      tier:
        Buffer.byteLength(plan.configText, 'utf8') > STANDARD_PARAMETER_BYTES
          ? ssm.ParameterTier.ADVANCED
          : ssm.ParameterTier.STANDARD,
    });
    this.eventBus =
      props.eventBus ??
      new events.EventBus(this, 'Bus', { description: 'Signet: Image Signed / Image Signing Failed' });
    this.deadLetterQueue = new sqs.Queue(this, 'DeadLetters', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    this.tokenSecret =
      props.tokenSecret ??
      new secretsmanager.Secret(this, 'VerifyToken', {
        description: 'Signet verify endpoint token (Authorization: Bearer, or first path segment)',
        generateSecretString: { passwordLength: 48, excludePunctuation: true, includeSpace: false },
      });
    this.keys = this.createKeys(plan.keys);
    this.ledgerTable = this.createLedgerTable();

    this.failureFunction = new SignetFunction(this, 'Failure', {
      entry: 'failure',
      description:
        'Signet: keeps failed push events in the dead-letter queue and announces Image Signing Failed',
      timeout: Duration.seconds(30),
      memorySize: 256,
      environment: failureEnvironment({
        eventBus: this.eventBus.eventBusArn,
        deadLetterQueue: this.deadLetterQueue.queueUrl,
        registryHost: props.registryHost,
      }),
      retryAttempts: 2,
      // If this function cannot finish either, Lambda writes the sign function's invocation
      // record (whose requestPayload is the original event) to the same queue.
      deadLetterQueue: this.deadLetterQueue,
    });

    this.signFunction = new SignetFunction(this, 'Sign', {
      entry: 'sign',
      description: 'Signet: signs pushed ECR images with KMS (cosign format)',
      // Registry and KMS calls retry with backoff inside; a stuck event should still end in time
      // for Lambda's own retries.
      timeout: Duration.minutes(2),
      memorySize: 512,
      environment: signEnvironment({
        configParameter: this.configParameter.parameterName,
        configTtlSeconds,
        eventBus: this.eventBus.eventBusArn,
        registryHost: props.registryHost,
        ledgerTable: this.ledgerTable.tableName,
      }),
      retryAttempts: SIGN_RETRY_ATTEMPTS,
      maxEventAge: SIGN_MAX_EVENT_AGE,
      onFailure: new destinations.LambdaDestination(this.failureFunction.function, { responseOnly: false }),
    });

    this.verifyFunction = new SignetFunction(this, 'Verify', {
      entry: 'verify',
      description: 'Signet: Kubernetes admission and verify endpoint',
      // The apiserver gives a webhook 10 s by default; answering later helps nobody.
      timeout: Duration.seconds(10),
      memorySize: 1024,
      environment: verifyEnvironment({
        configParameter: this.configParameter.parameterName,
        configTtlSeconds,
        tokenSecret: this.tokenSecret.secretArn,
        ledgerTable: this.ledgerTable.tableName,
      }),
    });
    [this.reverifyFunction, this.reverifySchedule] = this.createReverification(plan, configTtlSeconds);
    // Auth type NONE on purpose: the apiserver calls webhooks with a plain HTTPS client that
    // cannot SigV4-sign requests (AWS_IAM auth would reject every admission review). Requests
    // are authenticated by the handler instead: Signet's token as a bearer header or secret path.
    this.webhookUrl = this.verifyFunction.function.addFunctionUrl({
      authType: lambda.FunctionUrlAuthType.NONE,
      invokeMode: lambda.InvokeMode.BUFFERED,
    });

    this.pushRule = new events.Rule(this, 'PushRule', {
      description: 'Signet: ECR pushes to sign (signature artifacts filtered out)',
      // ECR sends its events to the account's default bus.
      eventPattern: pushEventPattern(plan),
    });
    this.pushRule.addTarget(this.signTarget());
    [this.pusherRule, this.scanRules, this.signatureRule] = this.createConditionRules(plan);

    this.grant(plan);
    this.acknowledgeNagFindings(plan, props.tokenSecret === undefined);
    this.alarms = this.createAlarms(props);
    this.dashboard = this.createDashboard();
    this.createOutputs();
  }

  /**
   * How every rule invokes the sign function: asynchronously, so that Lambda's retries and the
   * failure destination apply alike, with EventBridge's own retries and the dead-letter queue
   * for events it cannot deliver at all (the body is the event itself, which `signet replay` reads).
   */
  private signTarget(): targets.LambdaFunction {
    return new targets.LambdaFunction(this.signFunction.function, {
      deadLetterQueue: this.deadLetterQueue,
      retryAttempts: 8,
      maxEventAge: Duration.hours(6),
    });
  }

  /**
   * The rules that only signing conditions need, each added only when an enabled automatic rule
   * the sign function runs has the condition (no events nobody reads, no invocations for nothing).
   * All of them are on the default bus, where AWS services send their events, and target the sign
   * function exactly as the push rule does.
   *
   * What the account must enable for them to fire (README, "Deploy on AWS"):
   * - `pushedBy`: a CloudTrail trail logging management events (write) in this region: EventBridge
   *   receives `AWS API Call via CloudTrail` events only for calls a trail records.
   * - `scan`: scanning of the covered repositories, either ECR basic scanning with scan on push
   *   (`ECR Image Scan`) or Amazon Inspector enhanced scanning (`Inspector2 Scan`). The sign
   *   function keeps no state: a push waiting for its scan is not an error, and the scan's event
   *   decides the image on its own; a push whose scan never comes is never signed.
   * - `signedBy`: nothing; pushed `.sig` manifests are ECR pushes like any other.
   */
  private createConditionRules(
    plan: DeploymentPlan,
  ): [events.Rule | undefined, events.Rule[], events.Rule | undefined] {
    // Rule descriptions hold at most 512 characters: a long list of rules is counted instead.
    const forRules = (names: readonly string[]): string => {
      const listed = `for rules ${names.join(', ')}`;
      return listed.length <= 300 ? listed : `for ${names.length} signing rules`;
    };
    const rule = (id: string, description: string, eventPattern: events.EventPattern): events.Rule => {
      const created = new events.Rule(this, id, { description, eventPattern });
      created.addTarget(this.signTarget());
      return created;
    };
    const pusher =
      plan.conditions.pushedBy.length === 0
        ? undefined
        : rule(
            'PusherRule',
            `Signet: ECR pushes with their pusher (CloudTrail PutImage), ${forRules(plan.conditions.pushedBy)}`,
            putImageEventPattern(plan),
          );
    const scans =
      plan.conditions.scan.length === 0
        ? []
        : [
            rule(
              'EcrScanRule',
              `Signet: ECR basic scan results, ${forRules(plan.conditions.scan)}`,
              ecrScanEventPattern(plan),
            ),
            rule(
              'InspectorScanRule',
              `Signet: Amazon Inspector scan results, ${forRules(plan.conditions.scan)}`,
              inspectorScanEventPattern(plan),
            ),
          ];
    const signatures =
      plan.conditions.signedBy.length === 0
        ? undefined
        : rule(
            'SignatureRule',
            `Signet: pushed cosign signatures, which re-drive their image, ${forRules(plan.conditions.signedBy)}`,
            signaturePushEventPattern(plan),
          );
    return [pusher, scans, signatures];
  }

  /**
   * The ledger table: on demand (admissions come in bursts), point-in-time recovery (it is an
   * audit record), kept when the stack is deleted, deletion-protected. Decisions, resolved findings
   * and admitted images expire through TTL; signatures are kept. Key layout: lib/ledger.
   */
  private createLedgerTable(): dynamodb.Table {
    const { partitionKey, sortKey, timeToLiveAttribute, indexes } = LEDGER_TABLE_SCHEMA;
    const table = new dynamodb.Table(this, 'Ledger', {
      partitionKey: { name: partitionKey, type: dynamodb.AttributeType.STRING },
      sortKey: { name: sortKey, type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      timeToLiveAttribute,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      encryption: dynamodb.TableEncryption.AWS_MANAGED,
      deletionProtection: true,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    for (const [indexName, keys] of Object.entries(indexes)) {
      table.addGlobalSecondaryIndex({
        indexName,
        partitionKey: { name: keys.partitionKey, type: dynamodb.AttributeType.STRING },
        sortKey: { name: keys.sortKey, type: dynamodb.AttributeType.STRING },
        projectionType: dynamodb.ProjectionType.ALL,
      });
    }
    return table;
  }

  /**
   * With `reverify` in the configuration: the re-verification function (one instance at most, so
   * rounds never overlap; a tick that finds it busy is dropped, not queued) and the EventBridge
   * Scheduler schedule that invokes it every `reverify.intervalSeconds`, rounded up to minutes.
   */
  private createReverification(
    plan: DeploymentPlan,
    configTtlSeconds: number,
  ): [SignetFunction | undefined, scheduler.Schedule | undefined] {
    const settings = plan.config.reverify;
    if (settings === undefined) return [undefined, undefined];
    const fn = new SignetFunction(this, 'Reverify', {
      entry: 'reverify',
      description: 'Signet: re-verifies admitted images on a schedule (Image Trust Lost)',
      timeout: Duration.minutes(10),
      memorySize: 1024,
      environment: reverifyEnvironment({
        configParameter: this.configParameter.parameterName,
        configTtlSeconds,
        eventBus: this.eventBus.eventBusArn,
        ledgerTable: this.ledgerTable.tableName,
      }),
      retryAttempts: 0,
      maxEventAge: Duration.minutes(1),
      reservedConcurrentExecutions: 1,
    });
    const minutes = Math.max(1, Math.ceil(settings.intervalMs / 60_000));
    // A role of the schedule's own (the target grants it lambda:InvokeFunction on this function),
    // assumable by EventBridge Scheduler for this account only.
    this.reverifyScheduleRole = new iam.Role(this, 'ReverifyScheduleRole', {
      assumedBy: new iam.ServicePrincipal('scheduler.amazonaws.com', {
        conditions: { StringEquals: { 'aws:SourceAccount': Stack.of(this).account } },
      }),
      description: 'Signet: EventBridge Scheduler invokes the re-verification function',
    });
    const schedule = new scheduler.Schedule(this, 'ReverifySchedule', {
      description: `Signet: re-verification every ${minutes} min (reverify.intervalSeconds)`,
      schedule: scheduler.ScheduleExpression.rate(Duration.minutes(minutes)),
      target: new schedulerTargets.LambdaInvoke(fn.function, {
        role: this.reverifyScheduleRole,
        input: scheduler.ScheduleTargetInput.fromObject({ source: 'signet.reverify' }),
        // The next tick is the retry.
        retryAttempts: 0,
        maxEventAge: Duration.minutes(1),
      }),
    });
    return [fn, schedule];
  }

  private createKeys(sources: ReadonlyMap<string, KeySource>): Map<string, kms.IKey> {
    const scope = new Construct(this, 'Keys');
    const keys = new Map<string, kms.IKey>();
    for (const [witness, source] of sources) {
      switch (source.$case) {
        case 'create':
          keys.set(
            witness,
            new kms.Key(scope, witness, {
              description: `Signet witness "${witness}"`,
              keySpec: kms.KeySpec[source.spec],
              keyUsage: kms.KeyUsage.SIGN_VERIFY,
              alias: source.alias,
              // Signatures outlive stacks: deleting the key would orphan every one of them.
              removalPolicy: RemovalPolicy.RETAIN,
            }),
          );
          break;
        case 'arn':
          keys.set(witness, kms.Key.fromKeyArn(scope, witness, source.arn));
          break;
        case 'keyId':
          keys.set(
            witness,
            kms.Key.fromKeyArn(
              scope,
              witness,
              Stack.of(this).formatArn({ service: 'kms', resource: 'key', resourceName: source.keyId }),
            ),
          );
          break;
      }
    }
    return keys;
  }

  private grant(plan: DeploymentPlan): void {
    const stack = Stack.of(this);
    const repositoryArns = [
      ...plan.coverage.repositories.map((name) =>
        stack.formatArn({ service: 'ecr', resource: 'repository', resourceName: name }),
      ),
      ...plan.coverage.namespaces.map((ns) =>
        stack.formatArn({ service: 'ecr', resource: 'repository', resourceName: `${ns}/*` }),
      ),
    ];
    const keyArns = (witnesses: readonly string[]) =>
      witnesses.map((w) => this.keys.get(w)?.keyArn).filter((arn): arn is string => arn !== undefined);
    const readConfig = new iam.PolicyStatement({
      actions: ['ssm:GetParameter'],
      resources: [this.configParameter.parameterArn],
    });
    // GetAuthorizationToken is account-wide in IAM: it supports no resource-level permissions.
    const ecrToken = new iam.PolicyStatement({ actions: ['ecr:GetAuthorizationToken'], resources: ['*'] });

    const sign = this.signFunction.role;
    sign.addToPrincipalPolicy(readConfig);
    sign.addToPrincipalPolicy(ecrToken);
    sign.addToPrincipalPolicy(
      new iam.PolicyStatement({ actions: ECR_PUSH_ACTIONS, resources: repositoryArns }),
    );
    const signKeys = keyArns(plan.signingWitnesses);
    if (signKeys.length > 0) {
      sign.addToPrincipalPolicy(new iam.PolicyStatement({ actions: KMS_SIGN_ACTIONS, resources: signKeys }));
    }
    // signedBy: the public keys of the witnesses a countersigning rule trusts, never kms:Sign.
    const countersignKeys = keyArns(
      plan.countersignWitnesses.filter((w) => !plan.signingWitnesses.includes(w)),
    );
    if (countersignKeys.length > 0) {
      sign.addToPrincipalPolicy(
        new iam.PolicyStatement({ actions: KMS_VERIFY_ACTIONS, resources: countersignKeys }),
      );
    }
    sign.addToPrincipalPolicy(
      new iam.PolicyStatement({ actions: ['events:PutEvents'], resources: [this.eventBus.eventBusArn] }),
    );
    sign.addToPrincipalPolicy(
      new iam.PolicyStatement({ actions: LEDGER_SIGN_ACTIONS, resources: [this.ledgerTable.tableArn] }),
    );

    const failure = this.failureFunction.role;
    failure.addToPrincipalPolicy(
      new iam.PolicyStatement({ actions: ['events:PutEvents'], resources: [this.eventBus.eventBusArn] }),
    );
    failure.addToPrincipalPolicy(
      new iam.PolicyStatement({ actions: ['sqs:SendMessage'], resources: [this.deadLetterQueue.queueArn] }),
    );

    const verify = this.verifyFunction.role;
    verify.addToPrincipalPolicy(readConfig);
    verify.addToPrincipalPolicy(ecrToken);
    verify.addToPrincipalPolicy(
      new iam.PolicyStatement({ actions: ECR_READ_ACTIONS, resources: repositoryArns }),
    );
    const verifyKeys = keyArns(plan.verifyWitnesses);
    if (verifyKeys.length > 0) {
      verify.addToPrincipalPolicy(
        new iam.PolicyStatement({ actions: KMS_VERIFY_ACTIONS, resources: verifyKeys }),
      );
    }
    verify.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['secretsmanager:GetSecretValue'],
        resources: [this.tokenSecret.secretArn],
      }),
    );
    verify.addToPrincipalPolicy(
      new iam.PolicyStatement({ actions: LEDGER_VERIFY_ACTIONS, resources: [this.ledgerTable.tableArn] }),
    );

    // Re-verification reads what verify reads, the ledger, and announces on the bus.
    const reverify = this.reverifyFunction?.role;
    if (reverify !== undefined) {
      reverify.addToPrincipalPolicy(readConfig);
      reverify.addToPrincipalPolicy(ecrToken);
      reverify.addToPrincipalPolicy(
        new iam.PolicyStatement({ actions: ECR_READ_ACTIONS, resources: repositoryArns }),
      );
      if (verifyKeys.length > 0) {
        reverify.addToPrincipalPolicy(
          new iam.PolicyStatement({ actions: KMS_VERIFY_ACTIONS, resources: verifyKeys }),
        );
      }
      reverify.addToPrincipalPolicy(
        new iam.PolicyStatement({ actions: LEDGER_REVERIFY_ACTIONS, resources: [this.ledgerTable.tableArn] }),
      );
      reverify.addToPrincipalPolicy(
        new iam.PolicyStatement({ actions: ['events:PutEvents'], resources: [this.eventBus.eventBusArn] }),
      );
    }
  }

  /**
   * The AWS Solutions (cdk-nag) findings this design accepts, each with its reason. Resource ids
   * are rendered the way cdk-nag renders them, so an acknowledgement covers exactly one grant.
   */
  private acknowledgeNagFindings(plan: DeploymentPlan, createdSecret: boolean): void {
    // Qualified by the plugin name, as cdk-nag reports them ("AwsSolutions::<rule>[<finding>]").
    const ack = (scope: IConstruct, id: string, reason: string) =>
      Validations.of(scope).acknowledge({ id: `AwsSolutions::${id}`, reason });
    const reverify = this.reverifyFunction;
    const functions = [
      this.signFunction,
      this.failureFunction,
      this.verifyFunction,
      ...(reverify !== undefined ? [reverify] : []),
    ];
    for (const fn of functions) {
      ack(
        fn.function,
        'AwsSolutions-L1',
        'Pinned to nodejs22.x on purpose: the bundle targets node22 and is tested there; moving to a newer runtime is a deliberate, tested change rather than an implicit upgrade.',
      );
    }
    ack(
      this.failureFunction.role,
      'AwsSolutions-IAM5[Resource::*]',
      'xray:PutTraceSegments/PutTelemetryRecords (tracing ACTIVE) support no resource-level permissions.',
    );
    for (const fn of [
      this.signFunction,
      this.verifyFunction,
      ...(reverify !== undefined ? [reverify] : []),
    ]) {
      ack(
        fn.role,
        'AwsSolutions-IAM5[Resource::*]',
        'Only actions without resource-level permissions: ecr:GetAuthorizationToken (account-wide by design) and xray:PutTraceSegments/PutTelemetryRecords (tracing ACTIVE).',
      );
    }
    if (reverify !== undefined && this.reverifyScheduleRole !== undefined) {
      ack(
        this.reverifyScheduleRole,
        `AwsSolutions-IAM5[Resource::${nagResource(this, reverify.function.functionArn)}:*]`,
        'The Scheduler target grants lambda:InvokeFunction on the re-verification function and its versions (ARN:*); it is the one function.',
      );
    }
    ack(
      this.signFunction.role,
      `AwsSolutions-IAM5[Resource::${nagResource(this, this.failureFunction.function.functionArn)}:*]`,
      'Lambda grants its on-failure destination lambda:InvokeFunction on the failure function and its versions (ARN:*); it is the one function.',
    );
    for (const namespace of plan.coverage.namespaces) {
      const arn = Stack.of(this).formatArn({
        service: 'ecr',
        resource: 'repository',
        resourceName: `${namespace}/*`,
      });
      for (const fn of [
        this.signFunction,
        this.verifyFunction,
        ...(reverify !== undefined ? [reverify] : []),
      ]) {
        ack(
          fn.role,
          `AwsSolutions-IAM5[Resource::${nagResource(this, arn)}]`,
          `Registry namespace "${namespace}" is configured as covered: every repository under ${namespace}/, which may be created after deployment.`,
        );
      }
    }
    if (createdSecret) {
      ack(
        this.tokenSecret,
        'AwsSolutions-SMG4',
        'The token is also configured in Kubernetes webhook configurations; rotating it is a coordinated manual change (docs/aws.md), which automatic rotation would break.',
      );
    }
  }

  private createAlarms(props: SigningServiceProps): SigningService['alarms'] {
    const fiveMinutes = Duration.minutes(5);
    const verifyFn = this.verifyFunction.function;
    const alarms = {
      signFailures: new cloudwatch.Alarm(this, 'SignFailures', {
        alarmDescription: 'Signet: signing attempts failed (Lambda retries them; see the sign function logs)',
        metric: this.signFunction.function.metricErrors({ period: fiveMinutes, statistic: 'Sum' }),
        threshold: 1,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      }),
      deadLetters: new cloudwatch.Alarm(this, 'DeadLetterDepth', {
        alarmDescription:
          'Signet: pushes that were never signed wait in the dead-letter queue (signet replay)',
        metric: this.deadLetterQueue.metricApproximateNumberOfMessagesVisible({
          period: fiveMinutes,
          statistic: 'Maximum',
        }),
        threshold: 1,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      }),
      verifyErrors: new cloudwatch.Alarm(this, 'VerifyErrors', {
        alarmDescription: 'Signet: the verify endpoint crashed or answered 5xx (admission fails closed)',
        metric: new cloudwatch.MathExpression({
          expression: 'FILL(errors, 0) + FILL(url5xx, 0)',
          usingMetrics: {
            errors: verifyFn.metricErrors({ period: fiveMinutes, statistic: 'Sum' }),
            url5xx: verifyFn.metric('Url5xxCount', { period: fiveMinutes, statistic: 'Sum' }),
          },
          period: fiveMinutes,
          label: 'verify errors',
        }),
        threshold: 1,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      }),
      verifyLatency: new cloudwatch.Alarm(this, 'VerifyLatency', {
        alarmDescription: 'Signet: p99 verify duration is high (the apiserver times webhooks out)',
        metric: verifyFn.metricDuration({ period: fiveMinutes, statistic: 'p99' }),
        threshold: (props.verifyLatencyThreshold ?? Duration.seconds(2)).toMilliseconds(),
        evaluationPeriods: 3,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      }),
    };
    const trustLost =
      this.reverifyFunction === undefined
        ? undefined
        : new cloudwatch.Alarm(this, 'TrustLost', {
            alarmDescription:
              'Signet: an admitted image is no longer trusted (signet findings --table <LedgerTableName>)',
            metric: new cloudwatch.Metric({
              namespace: METRICS_NAMESPACE,
              metricName: FUNCTION_METRICS.trustLost,
              dimensionsMap: { service: SERVICE_NAME },
              statistic: 'Sum',
              period: fiveMinutes,
            }),
            threshold: 1,
            evaluationPeriods: 1,
            comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
          });
    const all = { ...alarms, ...(trustLost !== undefined ? { trustLost } : {}) };
    for (const alarm of Object.values(all)) alarm.addAlarmAction(...(props.alarmActions ?? []));
    return all;
  }

  /**
   * The local service's `/metrics` figures, as the Lambdas report them: signatures by outcome and
   * signing latency, admissions by verdict and their latency, the dead-letter queue, refusals and
   * errors of the verify endpoint, and the alarms.
   */
  private createDashboard(): cloudwatch.Dashboard {
    const period = Duration.minutes(5);
    const emf = (metricName: string, statistic: string, label: string): cloudwatch.Metric =>
      new cloudwatch.Metric({
        namespace: METRICS_NAMESPACE,
        metricName,
        dimensionsMap: { service: SERVICE_NAME },
        statistic,
        period,
        label,
      });
    const graph = (title: string, left: cloudwatch.IMetric[]): cloudwatch.GraphWidget =>
      new cloudwatch.GraphWidget({ title, left, width: 8, height: 6 });
    const dashboard = new cloudwatch.Dashboard(this, 'Dashboard', {
      dashboardName: `${Stack.of(this).stackName}-signet`,
      defaultInterval: Duration.hours(3),
    });
    dashboard.addWidgets(
      graph('Signatures', [
        emf(FUNCTION_METRICS.signed, 'Sum', 'signed'),
        emf(FUNCTION_METRICS.skipped, 'Sum', 'already signed or skipped'),
        emf(FUNCTION_METRICS.failed, 'Sum', 'failed'),
        emf(FUNCTION_METRICS.signingGaveUp, 'Sum', 'gave up (dead-lettered)'),
      ]),
      graph('Signing latency (ms)', [
        emf(FUNCTION_METRICS.signingLatency, 'p50', 'p50'),
        emf(FUNCTION_METRICS.signingLatency, 'p99', 'p99'),
      ]),
      graph('Dead-letter queue', [
        this.deadLetterQueue.metricApproximateNumberOfMessagesVisible({ period, statistic: 'Maximum' }),
      ]),
    );
    dashboard.addWidgets(
      graph('Admission decisions', [
        emf(FUNCTION_METRICS.admitted, 'Sum', 'admitted'),
        emf(FUNCTION_METRICS.denied, 'Sum', 'denied'),
      ]),
      graph('Admission latency (ms)', [
        emf(FUNCTION_METRICS.admissionLatency, 'p50', 'p50'),
        emf(FUNCTION_METRICS.admissionLatency, 'p99', 'p99'),
      ]),
      graph('Verify endpoint', [
        emf(FUNCTION_METRICS.verifyRefused, 'Sum', 'refused (4xx)'),
        emf(FUNCTION_METRICS.verifyErrors, 'Sum', 'errors (5xx)'),
        emf(FUNCTION_METRICS.invalidEvents, 'Sum', 'invalid push events'),
      ]),
    );
    dashboard.addWidgets(
      graph('Re-verification', [
        emf(FUNCTION_METRICS.reverifyTrusted, 'Sum', 'still trusted'),
        emf(FUNCTION_METRICS.reverifyUnverifiable, 'Sum', 'not re-verified (outage)'),
        emf(FUNCTION_METRICS.trustLost, 'Sum', 'trust lost (findings)'),
      ]),
      graph('Ledger', [emf(FUNCTION_METRICS.ledgerWriteFailed, 'Sum', 'ledger writes failed')]),
      graph('Conditions', [
        emf(FUNCTION_METRICS.notSigned, 'Sum', 'not signed (Image Not Signed)'),
        emf(FUNCTION_METRICS.scanWaiting, 'Sum', 'waiting for the scan'),
      ]),
    );
    dashboard.addWidgets(
      new cloudwatch.AlarmStatusWidget({
        title: 'Alarms',
        alarms: Object.values(this.alarms),
        width: 24,
        height: 3,
      }),
    );
    return dashboard;
  }

  private createOutputs(): void {
    new CfnOutput(this, 'WebhookUrl', {
      description: 'Signet verify endpoint (POST /admission, /admission/<cluster>, /verify; GET /healthz)',
      value: this.webhookUrl.url,
    });
    new CfnOutput(this, 'TokenSecretArn', {
      description: 'Secrets Manager secret holding the verify endpoint token',
      value: this.tokenSecret.secretArn,
    });
    new CfnOutput(this, 'EventBusArn', {
      description: 'Where Image Signed events go',
      value: this.eventBus.eventBusArn,
    });
    new CfnOutput(this, 'DeadLetterQueueUrl', {
      description: 'Failed push events (signet replay)',
      value: this.deadLetterQueue.queueUrl,
    });
    new CfnOutput(this, 'ConfigParameterName', { value: this.configParameter.parameterName });
    new CfnOutput(this, 'LedgerTableName', {
      description: 'The ledger: signet ledger --table <name>, signet findings --table <name>',
      value: this.ledgerTable.tableName,
    });
    for (const [witness, key] of this.keys) {
      new CfnOutput(this, `KeyArn${outputIdOf(witness)}`, {
        description: `KMS key of witness "${witness}" (signet keys export ${witness})`,
        value: key.keyArn,
      });
    }
  }
}

/**
 * The EventBridge pattern of pushes to sign: successful ECR pushes to the covered repositories,
 * without cosign signature/attestation/SBOM tags and without Sigstore, in-toto, DSSE or Notary
 * artifact types. A push by digest has an empty `image-tag`, which `anything-but` matches; the
 * `exists: false` alternatives keep events that leave a field out. The function checks all of
 * this again (a filter here only saves invocations).
 */
export function pushEventPattern(plan: Pick<DeploymentPlan, 'coverage'>): events.EventPattern {
  return {
    source: [ECR_EVENT_SOURCE],
    detailType: [ECR_IMAGE_ACTION],
    detail: {
      'action-type': ['PUSH'],
      result: ['SUCCESS'],
      'repository-name': repositoryNames(plan),
      'image-tag': [{ 'anything-but': { suffix: SIGNATURE_TAG_SUFFIXES } }, { exists: false }],
      'artifact-media-type': [{ 'anything-but': { prefix: SIGNATURE_ARTIFACT_PREFIXES } }, { exists: false }],
    },
  };
}

/** Covered repositories as a pattern on a repository-name field: exact names, namespaces by prefix. */
function repositoryNames(plan: Pick<DeploymentPlan, 'coverage'>): (string | { prefix: string })[] {
  return [...plan.coverage.repositories, ...plan.coverage.namespaces.map((ns) => ({ prefix: `${ns}/` }))];
}

/**
 * The pattern of CloudTrail's record of a push (`AWS API Call via CloudTrail`, `PutImage`, for
 * rules with `pushedBy`): successful calls (no `errorCode`) to the covered repositories, without
 * signature tags. CloudTrail writes the call's `requestParameters`: `imageTag` is absent for a
 * push by digest.
 */
export function putImageEventPattern(plan: Pick<DeploymentPlan, 'coverage'>): events.EventPattern {
  return {
    source: [ECR_EVENT_SOURCE],
    detailType: [CLOUDTRAIL_API_CALL],
    detail: {
      eventSource: [ECR_EVENT_SOURCE_HOST],
      eventName: [PUT_IMAGE],
      errorCode: [{ exists: false }],
      requestParameters: {
        repositoryName: repositoryNames(plan),
        imageTag: [{ 'anything-but': { suffix: SIGNATURE_TAG_SUFFIXES } }, { exists: false }],
      },
    },
  };
}

/** The pattern of ECR basic scanning results (`ECR Image Scan`, for rules with `scan`), failed ones too. */
export function ecrScanEventPattern(plan: Pick<DeploymentPlan, 'coverage'>): events.EventPattern {
  return {
    source: [ECR_EVENT_SOURCE],
    detailType: [ECR_IMAGE_SCAN],
    detail: { 'repository-name': repositoryNames(plan) },
  };
}

/**
 * The pattern of Amazon Inspector's ECR scan results (`Inspector2 Scan`, for rules with `scan`).
 * Inspector names the repository by ARN (`arn:aws:ecr:<region>:<account>:repository/<name>`), so
 * exact names match as a suffix and namespaces with a wildcard; the rule is on this account's
 * default bus, which carries this account's findings only.
 */
export function inspectorScanEventPattern(plan: Pick<DeploymentPlan, 'coverage'>): events.EventPattern {
  return {
    source: [INSPECTOR_EVENT_SOURCE],
    detailType: [INSPECTOR_SCAN],
    detail: {
      'repository-name': [
        ...plan.coverage.repositories.map((name) => ({ suffix: `:repository/${name}` })),
        ...plan.coverage.namespaces.map((ns) => ({ wildcard: `*:repository/${ns}/*` })),
      ],
    },
  };
}

/**
 * The pattern of pushed cosign signatures (`sha256-<hex>.sig`, for rules with `signedBy`): copy
 * tools push an image before its signatures, and the signature's arrival is what lets a
 * countersigning rule hold; the function re-drives the signed digest.
 */
export function signaturePushEventPattern(plan: Pick<DeploymentPlan, 'coverage'>): events.EventPattern {
  return {
    source: [ECR_EVENT_SOURCE],
    detailType: [ECR_IMAGE_ACTION],
    detail: {
      'action-type': ['PUSH'],
      result: ['SUCCESS'],
      'repository-name': repositoryNames(plan),
      'image-tag': [{ wildcard: 'sha256-*.sig' }],
    },
  };
}

function signatureArtifactPrefixes(): string[] {
  // Families first, then the exact types they do not cover (matching isSignatureArtifactType).
  const families = [
    'application/vnd.dev.cosign.',
    'application/vnd.dev.sigstore.bundle',
    'application/vnd.in-toto',
  ];
  return [
    ...families,
    ...SIGNATURE_ARTIFACT_TYPES.filter((type) => !families.some((f) => type.startsWith(f))),
  ];
}

/**
 * A resource ARN as cdk-nag names it in a finding id: intrinsic functions flattened, `Ref` as
 * `<Name>`, `Fn::GetAtt` as `<Resource.Attribute>`.
 */
function nagResource(scope: IConstruct, value: string): string {
  const visit = (node: unknown): string => {
    if (node === undefined) return '';
    if (typeof node === 'string') return node.replace(/\$\{/g, '<').replace(/\}/g, '>');
    const object = node as Record<string, unknown>;
    if (Array.isArray(object['Fn::Join'])) {
      const [delimiter, items] = object['Fn::Join'] as [string, unknown[]];
      return items.map(visit).join(delimiter);
    }
    if (Array.isArray(object['Fn::GetAtt'])) {
      const [resource, attribute] = object['Fn::GetAtt'] as [unknown, unknown];
      return `<${visit(resource)}.${visit(attribute)}>`;
    }
    if (object['Ref'] !== undefined) return `<${visit(object['Ref'])}>`;
    return JSON.stringify(node);
  };
  return visit(Stack.of(scope).resolve(value));
}

/** A CloudFormation-safe logical id fragment for a witness name. */
function outputIdOf(name: string): string {
  return name
    .split(/[^A-Za-z0-9]+/)
    .filter((part) => part !== '')
    .map((part) => part[0]?.toUpperCase() + part.slice(1))
    .join('');
}
