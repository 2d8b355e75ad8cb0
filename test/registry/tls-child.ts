/**
 * Runs one HttpRegistryClient read in a process of its own, for tests whose client must trust a
 * test certificate: Node reads NODE_EXTRA_CA_CERTS once, at start, and fetch offers no other way.
 *
 *   NODE_EXTRA_CA_CERTS=cert.pem node -r @swc-node/register test/registry/tls-child.ts '<TlsChildSpec JSON>'
 *
 * Prints one line of JSON: `{"value": ...}`, or `{"error": {"name", "code", "message"}}`.
 */
import { SignetError, describeError } from '../../lib/core/errors';
import { HttpRegistryClient, type RegistryEndpoint } from '../../lib/registry/client';

/** What the child reads, and from which registry. */
export interface TlsChildSpec {
  readonly registry: RegistryEndpoint;
  readonly call: 'getManifest' | 'getBlob' | 'listPage';
  /** For `listPage`: `reference` is the first page's path (`/v2/_catalog?n=100`). */
  readonly repository: string;
  readonly reference: string;
}

async function main(spec: TlsChildSpec): Promise<unknown> {
  const client = new HttpRegistryClient(spec.registry, {
    retry: { attempts: 1, baseDelayMs: 1, maxDelayMs: 1 },
  });
  switch (spec.call) {
    case 'getManifest':
      return (await client.getManifest(spec.repository, spec.reference))?.digest ?? null;
    case 'getBlob':
      return (await client.getBlob(spec.repository, spec.reference)).toString('utf8');
    case 'listPage': {
      // The first page, then the one its Link names (where a hostile registry would send us).
      const { next } = await client.listPage(spec.reference, undefined);
      return next === undefined ? null : ((await client.listPage(next, undefined)).json ?? null);
    }
  }
}

main(JSON.parse(process.argv[2] ?? '{}') as TlsChildSpec).then(
  (value) => process.stdout.write(`${JSON.stringify({ value })}\n`),
  (err: unknown) =>
    process.stdout.write(
      `${JSON.stringify({
        error: {
          name: err instanceof Error ? err.name : 'unknown',
          code: err instanceof SignetError ? err.code : undefined,
          message: describeError(err),
        },
      })}\n`,
    ),
);
