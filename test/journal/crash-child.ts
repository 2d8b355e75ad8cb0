/**
 * The process crash.int.test.ts kills: opens a journal, accepts pushes one request at a time (as
 * the service does), optionally claims some, says so on stdout, then waits for SIGKILL.
 *
 * Usage: node -r @swc-node/register test/journal/crash-child.ts <file> <accept> <claim>
 */
import { Journal } from '../../lib/journal/store';
import { pushEvent } from './helpers';

const [file, accepts = '0', claims = '0'] = process.argv.slice(2);
if (file === undefined) throw new Error('usage: crash-child.ts <file> <accept> <claim>');

const journal = Journal.open(file);
for (let n = 0; n < Number(accepts); n++) journal.accept([pushEvent(n)]);
const claimed = journal.claim(Number(claims));
process.stdout.write(`accepted ${claimed.map((entry) => entry.id).join(',')}\n`);
// Keep the journal open (lock held, entries running) until the test kills us.
setInterval(() => undefined, 60_000);
