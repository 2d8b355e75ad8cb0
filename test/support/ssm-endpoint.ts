/**
 * A local AWS Systems Manager Parameter Store for integration tests: `GetParameter` over the AWS
 * JSON 1.1 protocol (`AmazonSSM.GetParameter`), behind the real SDK client. Parameters are
 * String parameters whose version goes up on every `put`, as in SSM.
 */
import { AwsFault, startAwsJsonEndpoint, type AwsCall } from './aws-endpoint';

export interface SsmEndpoint {
  /** `http://127.0.0.1:<port>`: `AWS_ENDPOINT_URL_SSM`. */
  readonly url: string;
  readonly calls: AwsCall[];
  /** Creates or overwrites a String parameter (its version goes up by one). */
  put(name: string, value: string): void;
  close(): Promise<void>;
}

export async function startSsmEndpoint(
  options: { region?: string; account?: string } = {},
): Promise<SsmEndpoint> {
  const region = options.region ?? 'us-east-1';
  const account = options.account ?? '111122223333';
  const parameters = new Map<string, { value: string; version: number; modified: number }>();
  const endpoint = await startAwsJsonEndpoint({
    targetPrefix: 'AmazonSSM',
    handlers: {
      GetParameter: (body: { Name?: unknown }) => {
        const name = body.Name;
        if (typeof name !== 'string' || name === '') {
          throw new AwsFault(
            'ValidationException',
            "1 validation error detected: Value null at 'name' failed to satisfy constraint",
          );
        }
        const parameter = parameters.get(name);
        if (parameter === undefined) throw new AwsFault('ParameterNotFound', `Parameter ${name} not found.`);
        return {
          Parameter: {
            Name: name,
            Type: 'String',
            Value: parameter.value,
            Version: parameter.version,
            LastModifiedDate: parameter.modified / 1000,
            ARN: `arn:aws:ssm:${region}:${account}:parameter${name.startsWith('/') ? '' : '/'}${name}`,
            DataType: 'text',
          },
        };
      },
    },
  });
  return {
    url: endpoint.url,
    calls: endpoint.calls,
    put(name, value) {
      const version = (parameters.get(name)?.version ?? 0) + 1;
      parameters.set(name, { value, version, modified: Date.now() });
    },
    close: endpoint.close,
  };
}
