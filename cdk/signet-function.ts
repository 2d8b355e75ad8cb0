import * as path from 'node:path';
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat, SourceMapMode } from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';

/** The repository root: entries, the lockfile and node_modules are found from here. */
export const PROJECT_ROOT = path.resolve(__dirname, '..');

/** The Lambda runtime of every Signet function. */
export const FUNCTION_RUNTIME = lambda.Runtime.NODEJS_22_X;

/** How every function is bundled (bench/bundles.ts builds the same bundles from this). */
export const BUNDLE_OPTIONS = {
  minify: true,
  sourceMap: true,
  target: 'node22',
  // ESM builds where packages have them, so esbuild can drop what Signet does not use.
  mainFields: ['module', 'main'],
} as const;

/** What differs between Signet's functions; everything else is a shared default. */
export interface SignetFunctionProps {
  /** The handler file under `functions/` (`sign`, `verify`, `failure`, `reverify`); it exports `handler`. */
  readonly entry: 'sign' | 'verify' | 'failure' | 'reverify';
  readonly description: string;
  readonly timeout: Duration;
  /** MB; CPU grows with memory, so it also buys faster KMS/crypto work and cold starts. */
  readonly memorySize: number;
  readonly environment: Readonly<Record<string, string>>;
  /** Asynchronous invocations: retries after a thrown error (0-2). */
  readonly retryAttempts?: number;
  readonly maxEventAge?: Duration;
  readonly onFailure?: lambda.IDestination;
  /** Asynchronous invocations that exhaust their retries land here (when no onFailure is set). */
  readonly deadLetterQueue?: sqs.IQueue;
  /** Log retention; default one month. */
  readonly logRetention?: logs.RetentionDays;
  /** Instances that may run at once (1: invocations never overlap); default unreserved. */
  readonly reservedConcurrentExecutions?: number;
}

/**
 * One Signet Lambda with the defaults every function shares: Node.js 22 on arm64 (cheaper per
 * GB-second, and Signet has no native code), X-Ray tracing, its own log group with a retention,
 * and an esbuild bundle (minified, source maps on) built locally, so `cdk synth` needs neither
 * Docker nor the network. The role starts with nothing but writing its own logs; each caller
 * grants exactly what its handler needs.
 */
export class SignetFunction extends Construct {
  readonly function: NodejsFunction;
  readonly role: iam.Role;
  readonly logGroup: logs.LogGroup;

  constructor(scope: Construct, id: string, props: SignetFunctionProps) {
    super(scope, id);
    this.logGroup = new logs.LogGroup(this, 'Logs', {
      retention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    // An explicit role instead of AWSLambdaBasicExecutionRole: log writes to this log group only.
    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `Signet ${props.entry} function`,
    });
    this.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        resources: [this.logGroup.logGroupArn],
      }),
    );
    this.function = new NodejsFunction(this, 'Function', {
      entry: path.join(PROJECT_ROOT, 'functions', `${props.entry}.ts`),
      handler: 'handler',
      projectRoot: PROJECT_ROOT,
      depsLockFilePath: path.join(PROJECT_ROOT, 'package-lock.json'),
      description: props.description,
      runtime: FUNCTION_RUNTIME,
      architecture: lambda.Architecture.ARM_64,
      timeout: props.timeout,
      memorySize: props.memorySize,
      tracing: lambda.Tracing.ACTIVE,
      role: this.role,
      logGroup: this.logGroup,
      loggingFormat: lambda.LoggingFormat.JSON,
      environment: {
        POWERTOOLS_LOG_LEVEL: 'INFO',
        // Stack traces in logs point at the TypeScript sources.
        NODE_OPTIONS: '--enable-source-maps',
        ...props.environment,
      },
      retryAttempts: props.retryAttempts,
      maxEventAge: props.maxEventAge,
      onFailure: props.onFailure,
      deadLetterQueue: props.deadLetterQueue,
      reservedConcurrentExecutions: props.reservedConcurrentExecutions,
      bundling: {
        minify: BUNDLE_OPTIONS.minify,
        sourceMap: BUNDLE_OPTIONS.sourceMap,
        sourceMapMode: SourceMapMode.DEFAULT,
        // No sources inside the map: smaller, and stack traces only need the positions.
        sourcesContent: false,
        target: BUNDLE_OPTIONS.target,
        format: OutputFormat.CJS,
        mainFields: [...BUNDLE_OPTIONS.mainFields],
        // The SDK goes into the bundle: the version Signet was tested with, not whichever one
        // the runtime happens to ship.
        bundleAwsSDK: true,
        externalModules: [],
        forceDockerBundling: false,
      },
    });
  }
}
