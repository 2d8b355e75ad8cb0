/**
 * Every `signet` command as data: its synopsis, arguments, flags, an example and its exit codes.
 * The parser (`args.ts`) accepts exactly the flags listed here and the help (`help.ts`) prints
 * them, so a flag cannot exist without its help, nor a hint name a flag that does not exist.
 */

/** The exit statuses every command uses. */
export const EXIT = {
  /** Done: signed, admitted, replayed, listed, valid. */
  ok: 0,
  /** Denied or failed: an image denied, a rule that failed, a dead letter that failed again. */
  failed: 1,
  /** Usage or configuration error: a bad flag, an invalid config, a busy port, a missing binary. */
  usage: 2,
  /** Nothing to do: no rule covers the image, no dead letter or message to replay. */
  nothingToDo: 3,
} as const;

/** One flag of a command. */
export interface FlagSpec {
  readonly name: string;
  readonly type: 'string' | 'boolean';
  /** A string flag that may be given more than once (`--id A --id B`). */
  readonly multiple?: boolean;
  readonly short?: string;
  /** How help shows a string flag's value: `FILE`, `N`, `URL`. */
  readonly value?: string;
  readonly help: string;
}

/** One positional argument of a command. */
export interface ArgSpec {
  readonly name: string;
  readonly required: boolean;
  /** Takes every remaining argument (`IMAGE...`). */
  readonly variadic?: boolean;
  readonly help: string;
}

/** A command: what `signet <name> --help` prints and what the parser accepts. */
export interface CommandSpec {
  /** `sign`, `keys generate`. */
  readonly name: string;
  /** One line for the command list. */
  readonly summary: string;
  /** Synopsis lines, each after `signet `. */
  readonly usage: readonly string[];
  readonly description: string;
  readonly args: readonly ArgSpec[];
  readonly flags: readonly FlagSpec[];
  /** What the command prints on stdout. */
  readonly output: string;
  readonly examples: readonly string[];
  readonly exitCodes: readonly (readonly [code: number, meaning: string])[];
  /**
   * Prints JSON when stdout is not a terminal even without `--json` (commands whose output
   * scripts have always parsed as JSON; `serve`, whose logs a container collects from stdout).
   */
  readonly jsonWhenPiped: boolean;
}

const CONFIG: FlagSpec = {
  name: 'config',
  type: 'string',
  value: 'FILE',
  help: 'the configuration file (default: $SIGNET_CONFIG, else ./signet.yaml)',
};
const LOG_LEVEL: FlagSpec = {
  name: 'log-level',
  type: 'string',
  value: 'LEVEL',
  help: 'debug | info | warn | error | silent (default: info); logs are JSON lines on stderr',
};
const HELP: FlagSpec = { name: 'help', type: 'boolean', short: 'h', help: 'print this help' };
/** Where `ledger` and `findings` read the AWS deployment's ledger. */
const LEDGER_TABLE_FLAGS: readonly FlagSpec[] = [
  {
    name: 'table',
    type: 'string',
    value: 'NAME',
    help: 'read the DynamoDB ledger table NAME (AWS credentials and region from the environment)',
  },
  {
    name: 'endpoint',
    type: 'string',
    value: 'URL',
    help: "with --table: the DynamoDB endpoint (default: the SDK's)",
  },
];
const json = (what: string): FlagSpec => ({ name: 'json', type: 'boolean', help: what });
const JSON_WHEN_PIPED = 'print JSON (the default when stdout is not a terminal)';

const USAGE_ERROR: readonly [number, string] = [
  EXIT.usage,
  'usage or configuration error (an unknown flag, an invalid config file)',
];

/** The log levels `--log-level` accepts. */
export const LOG_LEVELS = ['debug', 'info', 'warn', 'error', 'silent'] as const;

/** Every command, in the order `signet --help` lists them. */
export const COMMANDS: readonly CommandSpec[] = [
  {
    name: 'serve',
    summary: 'run the local service: push events in, signatures out',
    usage: ['serve [--config FILE] [--port N] [--json]'],
    description:
      'Starts the local service: creates missing local keys, refuses a rule that cannot work with\n' +
      'its key, opens the journal (pushes accepted before a crash are signed again), listens on\n' +
      'server.host:server.port, and starts the embedded registry when the config has one. Runs\n' +
      'until SIGINT or SIGTERM. On a terminal it prints the next steps (the registry, a push\n' +
      'command, the keys, how to export a public key) and logs JSON lines on stderr. When stdout\n' +
      'is not a terminal (a container), or with --json, the logs go to stdout as JSON lines and\n' +
      'nothing else is printed.',
    args: [],
    flags: [
      CONFIG,
      {
        name: 'port',
        type: 'string',
        value: 'N',
        help: 'listen on port N instead of server.port (0: a free port)',
      },
      json('logs as JSON lines on stdout, no next steps (the default when stdout is not a terminal)'),
      LOG_LEVEL,
      HELP,
    ],
    output: 'the next steps on a terminal; else nothing but the JSON logs',
    examples: ['signet serve --config examples/signet.yaml'],
    exitCodes: [
      [EXIT.ok, 'stopped by SIGINT or SIGTERM'],
      [EXIT.failed, 'the service could not start for another reason (the journal is locked, ...)'],
      [
        EXIT.usage,
        'usage or configuration error: an invalid config, a rule that cannot work with its key, ' +
          'PORT_IN_USE (the port of the service or of the embedded registry is taken), ' +
          'REGISTRY_BINARY_MISSING (no docker-registry or registry on PATH)',
      ],
    ],
    jsonWhenPiped: true,
  },
  {
    name: 'sign',
    summary: 'sign an image already in the registry, or every image under a pattern (backfill)',
    usage: [
      'sign IMAGE [--rule NAME] [--config FILE] [--json]',
      'sign --all PATTERN [--rule NAME] [--dry-run] [--concurrency N] [--config FILE] [--json]',
    ],
    description:
      'Signs IMAGE with every enabled signing rule that covers it, manual rules included, or with\n' +
      'exactly the rule --rule names. A tag is resolved to its digest first. Signing is idempotent:\n' +
      'a signature already in the registry is reported as already-signed, not written twice.\n' +
      '\n' +
      'With --all: lists every repository under PATTERN (`host`, `host/team-a` for it and what is\n' +
      'under it, `host/team-a/**`, `host/*/app`) that a rule covers, and signs each tagged image\n' +
      "whose rules' witnesses have not signed it yet (default rules: under each of its tags), at\n" +
      'most N at once. Conditions are respected. Each signature is one atomic append, so an\n' +
      'interrupted run (Ctrl-C finishes the images in flight) leaves nothing half-written and the\n' +
      'next run resumes by skipping what is signed. ECR registries are listed through the ECR API\n' +
      "(DescribeRepositories, DescribeImages) with the AWS SDK's credentials. On a terminal a\n" +
      'progress line is redrawn on stderr (info logs are left out unless --log-level is given).',
    args: [
      {
        name: 'IMAGE',
        required: false,
        help: 'registry/repository[:tag][@digest] (required without --all)',
      },
    ],
    flags: [
      CONFIG,
      { name: 'rule', type: 'string', value: 'NAME', help: 'sign with this rule only' },
      {
        name: 'all',
        type: 'string',
        value: 'PATTERN',
        help: 'sign every covered image under registry/repository-glob (a backfill)',
      },
      {
        name: 'dry-run',
        type: 'boolean',
        help: 'with --all: list what would be signed; sign nothing',
      },
      {
        name: 'concurrency',
        type: 'string',
        value: 'N',
        help: 'with --all: images signed at once, 1-64 (default: 8)',
      },
      json(
        'print JSON (the default when stdout is not a terminal); with --all one line per image, ' +
          'then a summary line',
      ),
      LOG_LEVEL,
      HELP,
    ],
    output:
      'a table of rule, witness, status and signature; the signing report as JSON. With --all: ' +
      'counts per status, then the failed images with their error code (--dry-run: the images ' +
      'that would be signed); as JSON lines {"type":"image",...} per image, then {"type":"summary",...}',
    examples: [
      'signet sign 127.0.0.1:5000/team-a/app:v1 --config examples/signet.yaml',
      'signet sign 127.0.0.1:5000/manual/tool:1.2 --rule manual-only --json',
      'signet sign --all 127.0.0.1:5000/team-a --dry-run --config examples/signet.yaml',
      'signet sign --all 123456789012.dkr.ecr.eu-west-1.amazonaws.com --concurrency 4 --json > backfill.jsonl',
    ],
    exitCodes: [
      [EXIT.ok, 'every rule signed the image, or had signed it already (--all: every covered image)'],
      [
        EXIT.failed,
        'a rule failed to sign (the report says which and why); with --all: an image failed, or ' +
          'the run was interrupted',
      ],
      [
        EXIT.usage,
        'usage or configuration error (an unknown rule, a tag the registry does not hold, a ' +
          'PATTERN outside registries[])',
      ],
      [
        EXIT.nothingToDo,
        'nothing to do: no enabled rule covers the image (with --rule: that rule does not), ' +
          'its registry is not configured, or it is a signature artifact; with --all: no image ' +
          'under PATTERN is covered',
      ],
    ],
    jsonWhenPiped: true,
  },
  {
    name: 'verify',
    summary: 'decide images against the policies, as admission would',
    usage: ['verify IMAGE... [--namespace NS] [--cluster C] [--config FILE] [--json]'],
    description:
      'Decides each IMAGE against the enabled policies, as the admission webhook would for a pod\n' +
      'in Kubernetes namespace NS of cluster C, within admission.deadlineSeconds. Without\n' +
      '--namespace the namespace is empty and only policies selecting every namespace apply;\n' +
      'when policies cover the image in other namespaces, the answer names them.',
    args: [
      {
        name: 'IMAGE',
        required: true,
        variadic: true,
        help: 'registry/repository[:tag][@digest]; several images get one decision each',
      },
    ],
    flags: [
      CONFIG,
      { name: 'namespace', type: 'string', value: 'NS', help: 'the Kubernetes namespace (default: none)' },
      { name: 'cluster', type: 'string', value: 'C', help: 'the cluster id (default: none)' },
      json(JSON_WHEN_PIPED),
      LOG_LEVEL,
      HELP,
    ],
    output:
      'each decision with its policies and witnesses; as JSON the decision object for one image, ' +
      'an array of decisions (in argument order) for several',
    examples: [
      'signet verify 127.0.0.1:5000/team-a/app:v1 --namespace production --config examples/signet.yaml',
    ],
    exitCodes: [
      [EXIT.ok, 'every image is admitted (allowed, or allowed with a warning)'],
      [EXIT.failed, 'at least one image is denied'],
      USAGE_ERROR,
    ],
    jsonWhenPiped: true,
  },
  {
    name: 'audit',
    summary: "decide a cluster's workloads as admission would, before enforcing (no cluster access)",
    usage: ['audit [FILE] [--cluster C] [--html REPORT] [--config FILE] [--json]'],
    description:
      'Reads a Kubernetes List (`kubectl get pods,deployments,cronjobs -A -o json`) from FILE or\n' +
      'stdin and answers, for every object, what POST /admission would answer to creating it now:\n' +
      'each object becomes the AdmissionReview the apiserver would send, decided by the same\n' +
      'admission code, a few at once; each distinct image is verified once per set of policies\n' +
      'that select it. Kinds without a pod template are listed as not checked. Needs the config and\n' +
      'its registries, not the cluster. --html writes a self-contained report (counts per namespace\n' +
      'and policy, a chart, every denial with its reason) to attach to a change request.',
    args: [
      {
        name: 'FILE',
        required: false,
        help: 'the List as JSON (or YAML); - or nothing: read stdin',
      },
    ],
    flags: [
      CONFIG,
      { name: 'cluster', type: 'string', value: 'C', help: 'the cluster id policies select (default: none)' },
      { name: 'html', type: 'string', value: 'REPORT', help: 'also write the HTML report to REPORT' },
      json(JSON_WHEN_PIPED),
      LOG_LEVEL,
      HELP,
    ],
    output:
      'a summary (per namespace, per policy) and the denied workloads; as JSON the whole audit ' +
      '{generatedAt, cluster, summary, workloads} with the admission response of each object',
    examples: [
      'signet audit workloads.json --html audit.html --config signet.yaml',
      'kubectl get pods,deployments,statefulsets,daemonsets,jobs,cronjobs -A -o json | signet audit',
    ],
    exitCodes: [
      [EXIT.ok, 'every object would be admitted (allowed, or allowed with a warning)'],
      [EXIT.failed, 'at least one object would be denied'],
      [EXIT.usage, 'usage or configuration error (an invalid config, input that is not a Kubernetes List)'],
    ],
    jsonWhenPiped: true,
  },
  {
    name: 'replay',
    summary: 'sign the dead letters again: the AWS queue (--queue) or the local journal (--local)',
    usage: [
      'replay --queue URL [--max N] [--dry-run] [--endpoint URL] [--registry-host HOST] [--config FILE] [--json]',
      'replay --local [--id ID]... [--config FILE] [--json]',
    ],
    description:
      "With --queue: receives the AWS dead-letter queue, signs each message's ECR push with the\n" +
      'rules the sign function runs (those with a KMS witness), and deletes a message once every\n' +
      'signature is in the registry; the others stay in the queue.\n' +
      "With --local: moves the local service's dead letters (all, or --id) back into its journal.\n" +
      'A running `signet serve` signs them within seconds; with none running this command signs\n' +
      'them itself and reports how each went.',
    args: [],
    flags: [
      CONFIG,
      {
        name: 'queue',
        type: 'string',
        value: 'URL',
        help: 'the dead-letter queue (https://sqs.<region>.amazonaws.com/<account>/<name>)',
      },
      { name: 'max', type: 'string', value: 'N', help: 'with --queue: receive at most N messages' },
      {
        name: 'dry-run',
        type: 'boolean',
        help: 'with --queue: read and report only; sign and delete nothing',
      },
      {
        name: 'endpoint',
        type: 'string',
        value: 'URL',
        help: "with --queue: the SQS endpoint (default: the SDK's)",
      },
      {
        name: 'registry-host',
        type: 'string',
        value: 'HOST',
        help: "with --queue: the sign function's registryHost (default: $SIGNET_ECR_REGISTRY_HOST)",
      },
      { name: 'local', type: 'boolean', help: "replay the local service's dead letters" },
      {
        name: 'id',
        type: 'string',
        multiple: true,
        value: 'ID',
        help: 'with --local: only this dead letter (repeatable)',
      },
      json(JSON_WHEN_PIPED),
      LOG_LEVEL,
      HELP,
    ],
    output: 'a summary and one line per message or dead letter; the summary as JSON',
    examples: [
      'signet replay --queue "$DLQ_URL" --config signet-aws.yaml --dry-run',
      'signet replay --local --config examples/signet.yaml',
    ],
    exitCodes: [
      [EXIT.ok, 'every message or dead letter was replayed (--dry-run: every message could be)'],
      [EXIT.failed, 'a message stays in the queue, or a dead letter failed again'],
      USAGE_ERROR,
      [EXIT.nothingToDo, 'nothing to do: the queue held no visible message, or there was no dead letter'],
    ],
    jsonWhenPiped: true,
  },
  {
    name: 'failures',
    summary: "list the local service's dead letters",
    usage: ['failures [--id ID]... [--config FILE] [--json]'],
    description:
      'Lists the dead letters of the journal (journal.path), newest first, whether or not\n' +
      '`signet serve` runs: pushes whose signing failed permanently or ran out of attempts.',
    args: [],
    flags: [
      CONFIG,
      { name: 'id', type: 'string', multiple: true, value: 'ID', help: 'only this dead letter (repeatable)' },
      json('print a JSON array instead of the table'),
      LOG_LEVEL,
      HELP,
    ],
    output: 'a table (id, failed at, code, attempts, image) and each message; with --json an array',
    examples: ['signet failures --config examples/signet.yaml', 'signet failures --json'],
    exitCodes: [[EXIT.ok, 'listed (also when there is none)'], USAGE_ERROR],
    jsonWhenPiped: false,
  },
  {
    name: 'ledger',
    summary: 'what Signet signed and decided: by image, digest, witness, time',
    usage: [
      'ledger [--image REF] [--digest D] [--witness W] [--since T] [--until T] [--kind K] [--limit N] [--config FILE] [--json]',
      'ledger --table NAME [--endpoint URL] [same filters]',
    ],
    description:
      'Lists the ledger: every signature Signet wrote (image, digest, rule, witness, key id,\n' +
      'algorithm, conditions, time, event) and every admission and /verify decision (object,\n' +
      'images, digests, policies, effect, reasons, time), newest first. Locally it reads the\n' +
      "service's ledger in journal.path, whether or not `signet serve` runs; with --table it reads\n" +
      'the DynamoDB table the AWS deployment records into (stack output LedgerTableName). Every\n' +
      'filter given must match; --witness selects signatures only.',
    args: [],
    flags: [
      CONFIG,
      {
        name: 'image',
        type: 'string',
        value: 'REF',
        help: 'registry/repository, optionally :tag or @digest (a tag selects that tag only)',
      },
      {
        name: 'digest',
        type: 'string',
        value: 'D',
        help: 'sha256:<hex>: who signed it, when, with which rule',
      },
      { name: 'witness', type: 'string', value: 'W', help: "signatures by this witness (a config's name)" },
      {
        name: 'since',
        type: 'string',
        value: 'T',
        help: 'at or after T: a date-time (2026-11-01T00:00:00Z), a date (2026-11-01) or an age (90m, 24h, 7d)',
      },
      { name: 'until', type: 'string', value: 'T', help: 'before T (same forms as --since)' },
      {
        name: 'kind',
        type: 'string',
        value: 'K',
        help: 'signatures | decisions | all (default: all)',
      },
      { name: 'limit', type: 'string', value: 'N', help: 'at most N of each kind (default: 50)' },
      ...LEDGER_TABLE_FLAGS,
      json('print {signatures, decisions} as JSON instead of the tables'),
      LOG_LEVEL,
      HELP,
    ],
    output:
      'a table of signatures (signed at, image, rule, witness, key id, status) and one of decisions ' +
      '(decided at, effect, object, images); with --json {signatures, decisions}',
    examples: [
      'signet ledger --digest sha256:4f1c... --config examples/signet.yaml',
      'signet ledger --image 127.0.0.1:5000/team-a/app --since 7d --json',
      'signet ledger --table SignetStack-SignetLedger1234 --witness release --since 2026-11-01',
    ],
    exitCodes: [[EXIT.ok, 'listed (also when nothing matched)'], USAGE_ERROR],
    jsonWhenPiped: false,
  },
  {
    name: 'findings',
    summary: 'admitted images that are no longer trusted (continuous re-verification)',
    usage: ['findings [--all] [--config FILE] [--json]', 'findings --table NAME [--endpoint URL] [--all]'],
    description:
      'Lists the open findings of continuous re-verification (reverify in the config): images\n' +
      'admitted within reverify.windowDays that, checked again against the current policies, keys\n' +
      'and signatures, are no longer trusted (signature deleted, key removed or revoked, policy\n' +
      'changed, tag moved), newest first. A finding is resolved when a later round finds the image\n' +
      'trusted again; --all lists resolved findings too. --table reads the AWS deployment.',
    args: [],
    flags: [
      CONFIG,
      { name: 'all', type: 'boolean', help: 'resolved findings too' },
      ...LEDGER_TABLE_FLAGS,
      json('print a JSON array instead of the table'),
      LOG_LEVEL,
      HELP,
    ],
    output:
      'a table (found at, code, image, digest, namespace, cluster) and each message; with --json an array',
    examples: [
      'signet findings --config examples/signet.yaml',
      'signet findings --table SignetLedger --json',
    ],
    exitCodes: [[EXIT.ok, 'listed (also when there is none)'], USAGE_ERROR],
    jsonWhenPiped: false,
  },
  {
    name: 'keys generate',
    summary: 'create the missing local keys of a config, or one key file',
    usage: [
      'keys generate [--config FILE] [--json]',
      'keys generate --out FILE [--type SPEC] [--force] [--json]',
    ],
    description:
      'Without --out: creates the private key of every file:// witness whose key file does not\n' +
      'exist yet, of the kind its rules need (RSA 2048 for RSA algorithms, P-256 or P-384 for\n' +
      'ECDSA); existing keys are kept. With --out: writes one new key pair, FILE (PKCS#8 PEM,\n' +
      'mode 0600) and its public key next to it (FILE without .pem, plus .pub).',
    args: [],
    flags: [
      CONFIG,
      { name: 'out', type: 'string', value: 'FILE', help: 'write one key pair here' },
      {
        name: 'type',
        type: 'string',
        value: 'SPEC',
        help: 'with --out: rsa-2048 | rsa-3072 | rsa-4096 | ec-p256 | ec-p384 (default: ec-p256)',
      },
      { name: 'force', type: 'boolean', help: 'with --out: replace an existing key file' },
      json('print what was created as JSON'),
      LOG_LEVEL,
      HELP,
    ],
    output: 'one line per key created: witness, file, type and key id',
    examples: [
      'signet keys generate --config examples/signet.yaml',
      'signet keys generate --out keys/release.pem --type rsa-3072',
    ],
    exitCodes: [[EXIT.ok, 'created (also when every key exists already)'], USAGE_ERROR],
    jsonWhenPiped: false,
  },
  {
    name: 'keys export',
    summary: "print a witness's public keys (PEM) for cosign, Kyverno, the policy-controller",
    usage: ['keys export WITNESS [--config FILE]'],
    description:
      'Prints the SPKI PEM public key of WITNESS: of its key file, or from KMS (GetPublicKey). For a\n' +
      'witness with keys:, every key not expired yet, each after a comment line naming its key id\n' +
      'and validity window (PEM readers skip the comments).',
    args: [{ name: 'WITNESS', required: true, help: 'a witness name of the config' }],
    flags: [CONFIG, LOG_LEVEL, HELP],
    output: 'the public key, PEM; for a witness with keys:, one commented PEM block per current key',
    examples: ['signet keys export release --config examples/signet.yaml > release.pub'],
    exitCodes: [
      [EXIT.ok, 'printed'],
      [EXIT.failed, 'the key could not be read (KMS refused or is unreachable, AWS_CREDENTIALS_MISSING)'],
      [EXIT.usage, 'usage or configuration error (an unknown witness)'],
    ],
    jsonWhenPiped: false,
  },
  {
    name: 'keys rotate',
    summary: 'give a witness a new key, keeping its current keys for verification',
    usage: ['keys rotate WITNESS [--type SPEC] [--write] [--config FILE]'],
    description:
      'For a witness with a file:// key: writes a new key pair next to its current key file\n' +
      '(<name>-<YYYYMMDD>.pem and .pub, of the same kind unless --type) and prints the keys: block\n' +
      'to put in place of its key: (or keys:): the new key with notBefore now, then its current keys,\n' +
      'which keep verifying. For an awskms:// witness: prints the steps (create the key, the keys:\n' +
      'block with the current key pinned by its public key, deploy, disable the old key). The\n' +
      'configuration file is changed only with --write: replaced at once, and only when the result\n' +
      "loads with nothing changed but the witness's keys (comments are kept).",
    args: [{ name: 'WITNESS', required: true, help: 'a witness name of the config (with a signing key)' }],
    flags: [
      CONFIG,
      {
        name: 'type',
        type: 'string',
        value: 'SPEC',
        help: 'rsa-2048 | rsa-3072 | rsa-4096 | ec-p256 | ec-p384 (default: the kind of the current key)',
      },
      {
        name: 'write',
        type: 'boolean',
        help: 'file keys: put the keys: block in the configuration file itself (all or nothing)',
      },
      LOG_LEVEL,
      HELP,
    ],
    output: 'the new key file and key id, then the keys: block to paste and the next steps (as comments)',
    examples: ['signet keys rotate release --config examples/signet.yaml'],
    exitCodes: [
      [EXIT.ok, 'written (file keys) or explained (KMS keys)'],
      [EXIT.failed, 'the current key could not be read (KMS refused or is unreachable)'],
      [EXIT.usage, 'usage or configuration error (an unknown or verify-only witness)'],
    ],
    jsonWhenPiped: false,
  },
  {
    name: 'config check',
    summary: 'validate a config, check its rules against their keys, print advice',
    usage: ['config check [FILE] [--json]'],
    description:
      'Loads FILE (default: --config, $SIGNET_CONFIG, else ./signet.yaml), reports every problem\n' +
      'as FILE:LINE: path: message, checks every rule against its key (type, curve) and prints\n' +
      'advice as warnings on stderr.',
    args: [{ name: 'FILE', required: false, help: 'the configuration file' }],
    flags: [CONFIG, json('print the result as JSON (valid, issues with lines, warnings)'), LOG_LEVEL, HELP],
    output: '"FILE: OK (counts)"; with --json {file, valid, summary, issues, warnings, unchecked}',
    examples: ['signet config check examples/signet.yaml'],
    exitCodes: [
      [EXIT.ok, 'valid (warnings, if any, on stderr)'],
      [EXIT.usage, 'invalid, or a rule cannot work with its key (each problem as FILE:LINE: path: message)'],
    ],
    jsonWhenPiped: false,
  },
  {
    name: 'help',
    summary: 'print the help of a command',
    usage: ['help [COMMAND]'],
    description: 'Prints the list of commands, or the help of COMMAND (`signet help keys generate`).',
    args: [{ name: 'COMMAND', required: false, variadic: true, help: 'a command' }],
    flags: [HELP],
    output: 'the help text',
    examples: ['signet help sign'],
    exitCodes: [
      [EXIT.ok, 'printed'],
      [EXIT.usage, 'no such command'],
    ],
    jsonWhenPiped: false,
  },
];

/** Commands with subcommands, and their subcommands. */
export const GROUPS: ReadonlyMap<string, readonly string[]> = new Map([
  ['keys', ['generate', 'export', 'rotate']],
  ['config', ['check']],
]);

/** The flags only the top level takes (`signet --version`). */
export const TOP_LEVEL_FLAGS: readonly FlagSpec[] = [
  { name: 'version', type: 'boolean', help: 'print the version' },
  HELP,
];

/** The command called `name` (`sign`, `keys generate`). */
export function commandNamed(name: string): CommandSpec | undefined {
  return COMMANDS.find((c) => c.name === name);
}
