/**
 * The config loader under arbitrary text: it returns a fully-specified configuration whose
 * references hold together, or throws ConfigError CONFIG_INVALID listing at least one issue, each
 * naming its field. It never throws anything else, whatever the YAML (anchors, tags, deep
 * nesting, duplicate keys, binary noise).
 */
import fc from 'fast-check';
import { stringify } from 'yaml';
import { hostileStrings, jsonWith, RUNS } from './arbitraries';
import { loadOrList } from './load-config';

// The yaml library lexes a long plain scalar in time that grows faster than its length; the
// configuration is the operator's own file, so long values prove nothing here but slow the run.
const hostileString = hostileStrings(200);
const anyJson = jsonWith(hostileString);

/** Text that looks like YAML: its punctuation, indentation, keys and values, in any order. */
const yamlIsh = fc
  .array(
    fc.oneof(
      fc.constantFrom(
        '\n',
        '\n  ',
        '\n    ',
        '\n- ',
        '  - ',
        ': ',
        ':',
        '- ',
        '---\n',
        '...\n',
        '# comment\n',
        '&a ',
        '*a',
        '<<: *a\n',
        '!!str ',
        '!!binary ',
        '!custom ',
        '{',
        '}',
        '[',
        ']',
        ', ',
        '"',
        "'",
        '|\n',
        '>-\n',
        '\t',
        '? ',
        '%YAML 1.2\n',
        'registries',
        'witnesses',
        'signingRules',
        'policies',
        'admission',
        'server',
        'name',
        'key',
        'publicKey',
        'host',
        'witness',
        'algorithm',
        'namespaces',
        'attestors',
        'count',
      ),
      hostileString,
    ),
    { maxLength: 30 },
  )
  .map((parts) => parts.join(''));

describe('parseConfig', () => {
  it('loads or lists the problems of arbitrary YAML-ish text', () => {
    fc.assert(
      fc.property(fc.oneof(yamlIsh, hostileString), (text) => {
        loadOrList(text);
      }),
      { numRuns: RUNS },
    );
  });

  it('loads or lists the problems of any JSON value written as YAML', () => {
    fc.assert(
      fc.property(anyJson, (value) => {
        loadOrList(stringify(value) ?? '');
      }),
      { numRuns: RUNS },
    );
  });
});
