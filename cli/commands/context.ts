import type { Logger } from '../../lib/core/logger';
import type { Flags } from '../args';
import type { Out } from '../output';

/** What every command runs with: its arguments and flags, the streams, a logger, the config path. */
export interface CommandContext {
  readonly args: readonly string[];
  readonly flags: Flags;
  readonly out: Out;
  readonly err: Out;
  readonly logger: Logger;
  /** `--config`, else `$SIGNET_CONFIG`, else `signet.yaml`. */
  readonly configPath: string;
  /** Print JSON: `--json`, or stdout is not a terminal for commands that default to it. */
  readonly json: boolean;
}

/** A command's implementation; resolves to its exit status (errors are thrown). */
export type Command = (ctx: CommandContext) => Promise<number>;
