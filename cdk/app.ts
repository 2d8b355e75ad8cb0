/**
 * The CDK app: `npx cdk synth` / `npx cdk deploy` (cdk.json runs this file through
 * @swc-node/register). Settings, each from CDK context (`-c name=value`) or the environment:
 *
 *   signet:config              SIGNET_CONFIG               configuration file (default examples/signet-aws.yaml)
 *   signet:repositories        SIGNET_REPOSITORIES         ECR repositories to cover, comma-separated
 *   signet:registryNamespaces  SIGNET_REGISTRY_NAMESPACES  registry namespaces to cover, comma-separated
 *   signet:keys                SIGNET_KEYS                 JSON: {"<witness>": {"keySpec": "RSA_3072"} | {"existingKeyArn": "..."}}
 *   signet:alarmEmail          SIGNET_ALARM_EMAIL          e-mail subscribed to the alarms
 *   signet:stackName           SIGNET_STACK_NAME           stack name (default Signet)
 *
 * Without repositories or namespaces the stack covers what the configuration's signing rules
 * cover; without keys it creates a key for every witness named `awskms:///alias/...`.
 */
import * as path from 'node:path';
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { SignetStack } from './signet-stack';
import type { WitnessKeyProps } from './plan';

const app = new App();

function setting(context: string, env: string): string | undefined {
  const value: unknown = app.node.tryGetContext(context) ?? process.env[env];
  if (value === undefined || value === null) return undefined;
  return typeof value === 'string' ? value : JSON.stringify(value);
}

function list(context: string, env: string): string[] | undefined {
  const value = setting(context, env);
  if (value === undefined) return undefined;
  const trimmed = value.trim();
  if (trimmed.startsWith('[')) return (JSON.parse(trimmed) as unknown[]).map(String);
  return trimmed
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '');
}

function keys(): Record<string, WitnessKeyProps> | undefined {
  const value = setting('signet:keys', 'SIGNET_KEYS');
  if (value === undefined) return undefined;
  try {
    return JSON.parse(value) as Record<string, WitnessKeyProps>;
  } catch (error) {
    throw new Error(
      `signet:keys must be JSON such as {"release": {"keySpec": "RSA_3072"}}: ${String(error)}`,
      {
        cause: error,
      },
    );
  }
}

const configFile = path.resolve(
  setting('signet:config', 'SIGNET_CONFIG') ?? path.join(__dirname, '..', 'examples', 'signet-aws.yaml'),
);

new SignetStack(app, setting('signet:stackName', 'SIGNET_STACK_NAME') ?? 'Signet', {
  configFile,
  keys: keys(),
  repositories: list('signet:repositories', 'SIGNET_REPOSITORIES'),
  registryNamespaces: list('signet:registryNamespaces', 'SIGNET_REGISTRY_NAMESPACES'),
  alarmEmail: setting('signet:alarmEmail', 'SIGNET_ALARM_EMAIL'),
  env: { account: process.env['CDK_DEFAULT_ACCOUNT'], region: process.env['CDK_DEFAULT_REGION'] },
  description: 'Signet: signs ECR pushes with KMS, answers Kubernetes admission',
});

// Every synth is checked against the AWS Solutions rules; an unacknowledged finding fails it.
Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
