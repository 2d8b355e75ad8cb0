/** The property both config fuzz files check: a loaded config holds together, a rejection lists its fields. */
import { parseConfig } from '../../lib/config/load';
import type { SignetConfig } from '../../lib/config/types';
import { ConfigError } from '../../lib/core/errors';
import { check } from './arbitraries';

const OPTIONS = {
  baseDir: '/etc/signet',
  source: '/etc/signet/signet.yaml',
  env: { AWS_REGION: 'eu-west-1' },
};

/** A loaded config must be usable as it is: every name it refers to exists, every number in range. */
function expectCoherent(config: SignetConfig): void {
  const witnesses = new Set(config.witnesses.map((w) => w.name));
  check(witnesses.size === config.witnesses.length, 'duplicate witness names', config.witnesses);
  for (const rule of config.signingRules) {
    check(witnesses.has(rule.witness), `rule ${rule.name} names an unknown witness`, rule);
  }
  for (const policy of config.policies) {
    for (const set of policy.attestors) {
      check(
        set.witnesses.every((w) => witnesses.has(w)),
        `policy ${policy.name} names an unknown witness`,
        set,
      );
      check(
        set.count >= 1 && set.count <= set.witnesses.length,
        `policy ${policy.name} count out of range`,
        set,
      );
    }
  }
  check(
    Number.isInteger(config.server.port) && config.server.port >= 0 && config.server.port <= 65535,
    'bad port',
    config.server,
  );
}

/**
 * Loads `text`: either a coherent config, or ConfigError CONFIG_INVALID whose issues each name a
 * field and say something. Anything else thrown fails the property.
 */
export function loadOrList(text: string): 'loaded' | 'invalid' {
  let config: SignetConfig;
  try {
    config = parseConfig(text, OPTIONS);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    check(error.code === 'CONFIG_INVALID', `code ${error.code}`, error);
    check(error.issues.length > 0, 'no issues listed', error);
    for (const issue of error.issues) {
      check(issue.path.length > 0, 'an issue names no field', error.issues);
      check(issue.message.length > 0, 'an issue says nothing', error.issues);
      // The message a user reads lists every issue by its field.
      check(error.message.includes(issue.path), 'the message leaves an issue out', error);
    }
    return 'invalid';
  }
  expectCoherent(config);
  return 'loaded';
}
