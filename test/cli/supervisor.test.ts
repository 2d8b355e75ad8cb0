/**
 * The supervisor's decisions, on fake clocks: when it restarts the embedded registry, how long it
 * waits, when a crash becomes `keeps crashing`, and what a stop cancels. The registry is a stand-in
 * whose exit the test decides (starting the real one is test/cli/health.int.test.ts's job).
 */
import type { ChildProcess } from 'node:child_process';
import { startEmbeddedRegistry, type EmbeddedRegistry, type RegistryExit } from '../../cli/embedded-registry';
import { SupervisedRegistry, type SupervisorOptions } from '../../cli/supervisor';
import { capturingLogger } from '../support/http-surface';

jest.mock('../../cli/embedded-registry', () => ({
  ...jest.requireActual<typeof import('../../cli/embedded-registry')>('../../cli/embedded-registry'),
  startEmbeddedRegistry: jest.fn(),
}));

const start = startEmbeddedRegistry as jest.MockedFunction<typeof startEmbeddedRegistry>;

/** A registry process the test ends when it likes. */
interface StandIn extends EmbeddedRegistry {
  exit(how: RegistryExit): void;
  readonly stopped: boolean;
}

const started: StandIn[] = [];

function standIn(log: string): StandIn {
  let end: (how: RegistryExit) => void = () => undefined;
  const exited = new Promise<RegistryExit>((resolve) => (end = resolve));
  let stopped = false;
  const registry: StandIn = {
    host: '127.0.0.1:5000',
    url: 'http://127.0.0.1:5000',
    process: {} as ChildProcess,
    exited,
    logTail: () => log,
    exit: (how) => end(how),
    get stopped() {
      return stopped;
    },
    stop: async () => {
      stopped = true;
      end({ code: null, signal: 'SIGTERM' });
    },
  };
  started.push(registry);
  return registry;
}

const KILLED: RegistryExit = { code: null, signal: 'SIGKILL' };

function supervise(options: SupervisorOptions = {}) {
  const { logger, lines } = capturingLogger();
  const supervisor = new SupervisedRegistry(
    { host: '127.0.0.1:5000', dataDir: '/nonexistent' },
    logger,
    options,
  );
  const logged = (message: string) =>
    lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l['message'] === message);
  return { supervisor, logged };
}

/** The registry running now. */
const latest = (): StandIn => started[started.length - 1] as StandIn;

/** Ends the running registry with `how` and lets the supervisor see it. */
async function crash(how: RegistryExit = KILLED): Promise<void> {
  latest().exit(how);
  await jest.advanceTimersByTimeAsync(0);
}

beforeEach(() => {
  jest.useFakeTimers();
  started.length = 0;
  start.mockReset();
  start.mockImplementation(async () =>
    standIn(`line 1\nline 2\nregistry ${started.length + 1} says goodbye\n`),
  );
});

afterEach(() => {
  jest.useRealTimers();
});

describe('before it is started', () => {
  it('reports the registry down, not started', () => {
    const { supervisor } = supervise();
    expect(supervisor.health()).toEqual({ up: false, restarts: 0, reason: 'not started' });
    expect(supervisor.process).toBeUndefined();
  });
});

describe('when the first start fails', () => {
  it('throws, so that Signet does not start without its registry', async () => {
    start.mockRejectedValueOnce(new Error('address already in use'));
    const { supervisor } = supervise();
    await expect(supervisor.start()).rejects.toThrow('address already in use');
  });
});

describe('when the registry exits unasked', () => {
  it('reports it down with how it exited, and logs its last lines', async () => {
    const { supervisor, logged } = supervise({ baseBackoffMs: 200, logLines: 2 });
    await supervisor.start();
    await crash();
    expect(supervisor.health()).toEqual({
      up: false,
      restarts: 0,
      reason: 'the embedded registry exited with signal SIGKILL; restarting',
    });
    expect(logged('embedded registry exited')).toEqual([
      expect.objectContaining({
        level: 'error',
        registry: '127.0.0.1:5000',
        exit: 'exited with signal SIGKILL',
        restartInMs: 200,
        lastLines: ['line 2', 'registry 1 says goodbye'],
      }),
    ]);
  });

  it('starts it again after the backoff, and reports it up', async () => {
    const { supervisor, logged } = supervise({ baseBackoffMs: 200 });
    await supervisor.start();
    await crash();
    await jest.advanceTimersByTimeAsync(199);
    expect(start).toHaveBeenCalledTimes(1);
    await jest.advanceTimersByTimeAsync(1);
    expect(start).toHaveBeenCalledTimes(2);
    expect(supervisor.health()).toEqual({ up: true, restarts: 1, reason: undefined });
    expect(supervisor.process).toBe(latest());
    expect(logged('embedded registry restarted')).toEqual([
      expect.objectContaining({ level: 'info', restarts: 1 }),
    ]);
  });

  it('doubles the wait with each crash in the window, up to the longest backoff', async () => {
    const { supervisor, logged } = supervise({ baseBackoffMs: 100, maxBackoffMs: 500, crashThreshold: 100 });
    await supervisor.start();
    for (let n = 0; n < 5; n++) {
      await crash();
      await jest.advanceTimersByTimeAsync(500);
    }
    expect(logged('embedded registry exited').map((l) => l['restartInMs'])).toEqual([
      100, 200, 400, 500, 500,
    ]);
    expect(supervisor.health()).toMatchObject({ up: true, restarts: 5 });
  });

  it('forgets crashes older than the window', async () => {
    const { supervisor, logged } = supervise({ baseBackoffMs: 100, windowMs: 10_000 });
    await supervisor.start();
    await crash();
    await jest.advanceTimersByTimeAsync(100);
    await crash();
    await jest.advanceTimersByTimeAsync(10_000);
    await crash();
    expect(logged('embedded registry exited').map((l) => l['restartInMs'])).toEqual([100, 200, 100]);
  });
});

describe('when the registry keeps crashing', () => {
  it('logs `keeps crashing` from the threshold on, with the count and the last lines', async () => {
    const { supervisor, logged } = supervise({ baseBackoffMs: 10, maxBackoffMs: 10, crashThreshold: 3 });
    await supervisor.start();
    for (let n = 0; n < 4; n++) {
      await crash({ code: 2, signal: null });
      await jest.advanceTimersByTimeAsync(10);
    }
    expect(logged('embedded registry exited')).toHaveLength(2);
    expect(logged('embedded registry keeps crashing')).toEqual([
      expect.objectContaining({ level: 'error', exit: 'exited with code 2', crashes: 3, windowMs: 60_000 }),
      expect.objectContaining({
        crashes: 4,
        lastLines: ['line 1', 'line 2', 'registry 4 says goodbye'],
      }),
    ]);
  });
});

describe('when a restart fails', () => {
  it('counts it as another crash, backs off further and tries again', async () => {
    const { supervisor, logged } = supervise({ baseBackoffMs: 100 });
    await supervisor.start();
    start.mockRejectedValueOnce(new Error('embedded registry did not answer within 15000 ms'));
    await crash();
    await jest.advanceTimersByTimeAsync(100);
    expect(supervisor.health()).toMatchObject({ up: false, restarts: 0 });
    const exits = logged('embedded registry exited');
    expect(exits[1]).toMatchObject({
      exit: 'embedded registry did not answer within 15000 ms',
      restartInMs: 200,
      lastLines: ['embedded registry did not answer within 15000 ms'],
    });
    await jest.advanceTimersByTimeAsync(200);
    expect(supervisor.health()).toEqual({ up: true, restarts: 1, reason: undefined });
  });
});

describe('when it is stopped', () => {
  it('stops the registry, and its exit is no crash', async () => {
    const { supervisor, logged } = supervise();
    await supervisor.start();
    await supervisor.stop();
    await jest.advanceTimersByTimeAsync(60_000);
    expect(latest().stopped).toBe(true);
    expect(logged('embedded registry exited')).toEqual([]);
    expect(start).toHaveBeenCalledTimes(1);
  });

  it('cancels a restart that was waiting for its backoff', async () => {
    const { supervisor } = supervise({ baseBackoffMs: 1_000 });
    await supervisor.start();
    await crash();
    await supervisor.stop();
    await jest.advanceTimersByTimeAsync(60_000);
    expect(start).toHaveBeenCalledTimes(1);
  });

  it('stops a registry whose restart was under way', async () => {
    const { supervisor } = supervise({ baseBackoffMs: 100 });
    await supervisor.start();
    let finish: () => void = () => undefined;
    start.mockImplementationOnce(
      () => new Promise<EmbeddedRegistry>((resolve) => (finish = () => resolve(standIn('late\n')))),
    );
    await crash();
    await jest.advanceTimersByTimeAsync(100);
    expect(start).toHaveBeenCalledTimes(2);
    // stop() waits for the restart under way, then that registry is stopped too.
    const stopped = supervisor.stop();
    finish();
    await stopped;
    expect(latest().stopped).toBe(true);
    expect(supervisor.health().up).toBe(false);
  });
});
