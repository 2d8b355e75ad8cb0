/**
 * The CDK app: `npx cdk synth` / `npx cdk deploy` (cdk.json runs this file through
 * @swc-node/register). Settings, each from CDK context (`-c signet:<name>=value`) or from the
 * environment variable `APP_ENV.<name>` names (`functions/env.ts`; docs/aws.md lists both):
 *
 *   config              configuration file (default examples/signet-aws.yaml)
 *   repositories        ECR repositories to cover, comma-separated
 *   registryNamespaces  registry namespaces to cover, comma-separated
 *   keys                JSON: {"<witness>": {"keySpec": "RSA_3072"} | {"existingKeyArn": "..."}}
 *   alarmEmail          e-mail subscribed to the alarms
 *   stackName           stack name (default Signet)
 *
 * Without repositories or namespaces the stack covers what the configuration's signing rules
 * cover; without keys it creates a key for every witness named `awskms:///alias/...`.
 */
import * as path from 'node:path';
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { APP_ENV } from '../functions/env';
import { SignetStack } from './signet-stack';
import type { WitnessKeyProps } from './plan';

const app = new App();

type Setting = keyof typeof APP_ENV;

function setting(name: Setting): string | undefined {
  const value: unknown = app.node.tryGetContext(`signet:${name}`) ?? process.env[APP_ENV[name]];
  if (value === undefined || value === null) return undefined;
  return typeof value === 'string' ? value : JSON.stringify(value);
}

function list(name: Setting): string[] | undefined {
  const value = setting(name);
  if (value === undefined) return undefined;
  const trimmed = value.trim();
  if (trimmed.startsWith('[')) return (JSON.parse(trimmed) as unknown[]).map(String);
  return trimmed
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '');
}

function keys(): Record<string, WitnessKeyProps> | undefined {
  const value = setting('keys');
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
  setting('config') ?? path.join(__dirname, '..', 'examples', 'signet-aws.yaml'),
);

new SignetStack(app, setting('stackName') ?? 'Signet', {
  configFile,
  keys: keys(),
  repositories: list('repositories'),
  registryNamespaces: list('registryNamespaces'),
  alarmEmail: setting('alarmEmail'),
  env: { account: process.env['CDK_DEFAULT_ACCOUNT'], region: process.env['CDK_DEFAULT_REGION'] },
  description: 'Signet: signs ECR pushes with KMS, answers Kubernetes admission',
});

// Every synth is checked against the AWS Solutions rules; an unacknowledged finding fails it.
Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
