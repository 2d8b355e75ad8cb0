import { join } from 'node:path';
import { Journal } from '../../lib/journal/store';
import { fakeClock, type FakeClock, pushEvent, tempDir } from './helpers';

describe('Journal', () => {
  let cleanup: () => Promise<void>;
  let file: string;
  let clock: FakeClock;
  let journal: Journal;

  beforeEach(async () => {
    const temp = await tempDir();
    cleanup = temp.cleanup;
    file = join(temp.dir, 'journal.db');
    clock = fakeClock();
    journal = Journal.open(file, { clock: clock.now });
  });

  afterEach(async () => {
    journal.close();
    await cleanup();
  });

  describe('when pushes are accepted', () => {
    it('returns one new id per event, in order, and holds them pending', () => {
      const accepted = journal.accept([pushEvent(1), pushEvent(2), pushEvent(3)]);

      expect(accepted.map((a) => a.duplicate)).toEqual([false, false, false]);
      expect(new Set(accepted.map((a) => a.id)).size).toBe(3);
      expect(journal.depth()).toEqual({ pending: 3, running: 0, deadLetters: 0 });
      expect(journal.nextDueAt()).toBe(clock.now());
    });

    it('gives back the event exactly as accepted, undefined fields included', () => {
      const event = pushEvent(1, { tag: 'v1', artifactType: undefined, id: undefined, source: 'harbor' });
      journal.accept([event]);

      const [entry] = journal.claim(1);

      expect(entry?.event).toStrictEqual(event);
      expect(entry).toMatchObject({ attempts: 0, firstSeenAt: clock.now(), lastError: undefined });
    });

    it('stores only the PushEvent fields of a richer object', () => {
      const richer = { ...pushEvent(1), secret: 'not for the disk' };
      journal.accept([richer]);

      expect(journal.claim(1)[0]?.event).not.toHaveProperty('secret');
    });
  });

  describe('when an identical push is pending or running', () => {
    it('returns the waiting entry as a duplicate', () => {
      const [first] = journal.accept([pushEvent(1, { tag: 'v1' })]);
      const [again] = journal.accept([pushEvent(1, { tag: 'v1', id: 'another-notification' })]);

      expect(again).toEqual({ id: first?.id, duplicate: true });
      expect(journal.depth().pending).toBe(1);
    });

    it('de-duplicates within one batch', () => {
      const [a, b] = journal.accept([pushEvent(1), pushEvent(1)]);

      expect(b).toEqual({ id: a?.id, duplicate: true });
    });

    it('de-duplicates against a running entry', () => {
      const [first] = journal.accept([pushEvent(1)]);
      journal.claim(1);

      expect(journal.accept([pushEvent(1)])).toEqual([{ id: first?.id, duplicate: true }]);
    });

    it('keeps pushes of the same digest under different tags apart', () => {
      const accepted = journal.accept([
        pushEvent(1, { tag: 'v1' }),
        pushEvent(1, { tag: 'v2' }),
        pushEvent(1),
      ]);

      expect(accepted.map((a) => a.duplicate)).toEqual([false, false, false]);
    });
  });

  describe('when the identical push was already completed', () => {
    it('accepts it again as new work', () => {
      const [first] = journal.accept([pushEvent(1)]);
      journal.claim(1);
      journal.complete(first!.id);

      const [again] = journal.accept([pushEvent(1)]);

      expect(again?.duplicate).toBe(false);
      expect(again?.id).not.toBe(first?.id);
    });
  });

  describe('claim', () => {
    it('takes up to the limit, oldest first, and marks them running', () => {
      journal.accept([pushEvent(3)], clock.now() + 2);
      journal.accept([pushEvent(1)], clock.now());
      journal.accept([pushEvent(2)], clock.now() + 1);

      const claimed = journal.claim(2, clock.now() + 10);

      expect(claimed.map((e) => e.event.digest)).toEqual([pushEvent(1).digest, pushEvent(2).digest]);
      expect(journal.depth()).toEqual({ pending: 1, running: 2, deadLetters: 0 });
    });

    it('never hands out a running entry twice', () => {
      journal.accept([pushEvent(1), pushEvent(2)]);

      const first = journal.claim(5);

      expect(first).toHaveLength(2);
      expect(journal.claim(5)).toEqual([]);
    });

    it('skips entries that are not due yet', () => {
      const [entry] = journal.accept([pushEvent(1)]);
      journal.claim(1);
      journal.retry(entry!.id, { code: 'UNAVAILABLE', message: 'registry down' }, clock.now() + 1_000);

      expect(journal.claim(1)).toEqual([]);
      expect(journal.claim(1, clock.now() + 1_000)).toHaveLength(1);
    });

    it('claims nothing for a limit of zero', () => {
      journal.accept([pushEvent(1)]);

      expect(journal.claim(0)).toEqual([]);
    });
  });

  describe('complete', () => {
    it('deletes the entry', () => {
      const [entry] = journal.accept([pushEvent(1)]);
      journal.claim(1);

      journal.complete(entry!.id);

      expect(journal.depth()).toEqual({ pending: 0, running: 0, deadLetters: 0 });
      expect(journal.nextDueAt()).toBeUndefined();
    });
  });

  describe('retry', () => {
    it('puts the entry back to pending with one more attempt and the last error', () => {
      const [accepted] = journal.accept([pushEvent(1)]);
      journal.claim(1);

      journal.retry(accepted!.id, { code: 'UNAVAILABLE', message: 'registry down' }, clock.now() + 500);

      expect(journal.depth()).toEqual({ pending: 1, running: 0, deadLetters: 0 });
      expect(journal.nextDueAt()).toBe(clock.now() + 500);
      expect(journal.claim(1, clock.now() + 500)[0]).toMatchObject({
        id: accepted!.id,
        attempts: 1,
        lastError: { code: 'UNAVAILABLE', message: 'registry down' },
      });
    });
  });

  describe('deadLetter', () => {
    it('moves the entry with its history and the failure', () => {
      const firstSeenAt = clock.now();
      const [accepted] = journal.accept([pushEvent(1, { tag: 'v1' })]);
      journal.claim(1);
      journal.retry(accepted!.id, { code: 'UNAVAILABLE', message: 'down' }, clock.now());
      journal.claim(1);
      clock.advance(60_000);

      journal.deadLetter(accepted!.id, { code: 'DENIED', message: 'no push rights', permanent: true });

      expect(journal.depth()).toEqual({ pending: 0, running: 0, deadLetters: 1 });
      expect(journal.deadLetters()).toEqual([
        {
          id: accepted!.id,
          event: pushEvent(1, { tag: 'v1' }),
          attempts: 2,
          firstSeenAt,
          failedAt: firstSeenAt + 60_000,
          code: 'DENIED',
          message: 'no push rights',
          permanent: true,
        },
      ]);
    });

    it('lists by id, and the most recent first within a limit', () => {
      const ids = journal.accept([pushEvent(1), pushEvent(2), pushEvent(3)]).map((a) => a.id);
      journal.claim(3);
      for (const id of ids) {
        clock.advance(1);
        journal.deadLetter(id, { code: 'DENIED', message: 'no', permanent: false });
      }

      expect(journal.deadLetters({ limit: 2 }).map((d) => d.id)).toEqual([ids[2], ids[1]]);
      expect(journal.deadLetters({ id: ids[0] }).map((d) => d.id)).toEqual([ids[0]]);
      expect(journal.deadLetters({ id: 'no-such-id' })).toEqual([]);
    });
  });

  describe('requeue', () => {
    let ids: string[];

    beforeEach(() => {
      ids = journal.accept([pushEvent(1), pushEvent(2)]).map((a) => a.id);
      journal.claim(2);
      for (const id of ids)
        journal.deadLetter(id, { code: 'UNAVAILABLE', message: 'down', permanent: false });
      clock.advance(10_000);
    });

    it('moves the named dead letters back to pending, due now, with attempts reset', () => {
      expect(journal.requeue([ids[0]!, 'no-such-id'])).toEqual([{ id: ids[0], entry: ids[0] }]);

      expect(journal.depth()).toEqual({ pending: 1, running: 0, deadLetters: 1 });
      expect(journal.claim(5)).toEqual([
        expect.objectContaining({ id: ids[0], attempts: 0, event: pushEvent(1) }),
      ]);
    });

    it('moves all of them when no ids are given', () => {
      expect(
        journal
          .requeue()
          .map((r) => r.id)
          .sort(),
      ).toEqual([...ids].sort());

      expect(journal.depth()).toEqual({ pending: 2, running: 0, deadLetters: 0 });
    });

    it('drops a dead letter whose image is pending again, the new entry covering it', () => {
      const [fresh] = journal.accept([pushEvent(1)]);

      expect(journal.requeue([ids[0]!])).toEqual([{ id: ids[0], entry: fresh?.id }]);

      expect(journal.depth()).toEqual({ pending: 1, running: 0, deadLetters: 1 });
      expect(journal.claim(5).map((e) => e.id)).toEqual([fresh?.id]);
    });
  });

  describe('removeDeadLetter', () => {
    it('deletes one dead letter and says whether there was one', () => {
      const [accepted] = journal.accept([pushEvent(1)]);
      journal.claim(1);
      journal.deadLetter(accepted!.id, { code: 'DENIED', message: 'no', permanent: true });

      expect(journal.removeDeadLetter(accepted!.id)).toBe(true);
      expect(journal.removeDeadLetter(accepted!.id)).toBe(false);
      expect(journal.depth().deadLetters).toBe(0);
    });
  });

  describe('when the journal is reopened with entries left running', () => {
    it('makes them pending again, due now, counting the interrupted attempt', () => {
      const [running, pending] = journal.accept([pushEvent(1), pushEvent(2)]);
      journal.claim(1);
      journal.close();
      clock.advance(5_000);

      journal = Journal.open(file, { clock: clock.now });

      expect(journal.depth()).toEqual({ pending: 2, running: 0, deadLetters: 0 });
      expect(journal.nextDueAt()).toBe(clock.now() - 5_000);
      const entries = journal.claim(5);
      expect(entries.find((e) => e.id === running?.id)).toMatchObject({
        attempts: 1,
        lastError: { code: 'INTERRUPTED' },
      });
      expect(entries.find((e) => e.id === pending?.id)).toMatchObject({ attempts: 0, lastError: undefined });
    });
  });
});
