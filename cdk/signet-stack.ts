import { Stack, type StackProps } from 'aws-cdk-lib';
import * as cloudwatchActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as sns from 'aws-cdk-lib/aws-sns';
import type { Construct } from 'constructs';
import { parseConfig } from '../lib/config/load';
import type { SignetConfig, SigningAlgorithm } from '../lib/config/types';
import { coverageOfRules, type WitnessKeyProps, type WitnessKeySpec } from './plan';
import { SigningService, type SigningServiceProps } from './signing-service';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';

/** A deployable Signet: one `SigningService` plus what an app needs around it. */
export interface SignetStackProps extends StackProps {
  readonly configFile: string;
  /** Default: a created key for every `awskms:///alias/...` witness, sized for its rules. */
  readonly keys?: SigningServiceProps['keys'];
  /** Default (with `registryNamespaces`): what the configuration's enabled signing rules cover. */
  readonly repositories?: readonly string[];
  readonly registryNamespaces?: readonly string[];
  /** An e-mail address subscribed to every alarm (through a new SNS topic). */
  readonly alarmEmail?: string;
}

/** The stack `cdk/app.ts` deploys. */
export class SignetStack extends Stack {
  readonly service: SigningService;

  constructor(scope: Construct, id: string, props: SignetStackProps) {
    super(scope, id, props);
    const config = readConfigForDefaults(props.configFile);
    const coverage =
      props.repositories === undefined && props.registryNamespaces === undefined
        ? coverageOfRules(config)
        : { repositories: props.repositories ?? [], namespaces: props.registryNamespaces ?? [] };
    let alarmActions: SigningServiceProps['alarmActions'];
    if (props.alarmEmail !== undefined) {
      const topic = new sns.Topic(this, 'Alarms', { displayName: 'Signet alarms', enforceSSL: true });
      new sns.Subscription(this, 'AlarmEmail', {
        topic,
        protocol: sns.SubscriptionProtocol.EMAIL,
        endpoint: props.alarmEmail,
      });
      alarmActions = [new cloudwatchActions.SnsAction(topic)];
    }
    this.service = new SigningService(this, 'Signet', {
      configFile: props.configFile,
      keys: props.keys ?? defaultKeys(config),
      repositories: coverage.repositories,
      registryNamespaces: coverage.namespaces,
      alarmActions,
    });
  }
}

/**
 * Reads the configuration for the defaults above. An invalid file throws the configuration's own
 * error here, before anything else (the construct would throw the same one).
 */
function readConfigForDefaults(configFile: string): SignetConfig {
  const source = path.resolve(configFile);
  let text: string;
  try {
    text = readFileSync(source, 'utf8');
  } catch {
    // The construct reports an unreadable file with its own ConfigError.
    text = '{}';
  }
  return parseConfig(text, { source, baseDir: path.dirname(source) });
}

const SPEC_FOR: Record<SigningAlgorithm, WitnessKeySpec> = {
  RSASSA_PKCS1_V1_5_SHA_256: 'RSA_3072',
  RSASSA_PSS_SHA_256: 'RSA_3072',
  ECDSA_SHA_256: 'ECC_NIST_P256',
  ECDSA_SHA_384: 'ECC_NIST_P384',
};

/**
 * A created KMS key for every witness the configuration names by alias, of the kind its signing
 * rules need (RSA 3072 for RSA algorithms; P-256 or P-384 for ECDSA; P-256 when no rule uses it).
 */
export function defaultKeys(config: SignetConfig): Record<string, WitnessKeyProps> {
  const keys: Record<string, WitnessKeyProps> = {};
  for (const witness of config.witnesses) {
    if (witness.key.$case !== 'kms' || !/(^|:)alias\//.test(witness.key.keyId)) continue;
    const algorithm = config.signingRules.find((rule) => rule.witness === witness.name)?.algorithm;
    keys[witness.name] = { keySpec: algorithm === undefined ? 'ECC_NIST_P256' : SPEC_FOR[algorithm] };
  }
  return keys;
}
