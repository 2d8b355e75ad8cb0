import { onceUntilFailure } from '../../lib/core/once';

describe('onceUntilFailure', () => {
  it('works the value out once and shares it, pending or done', async () => {
    let calls = 0;
    const get = onceUntilFailure(async () => ++calls);
    expect(await Promise.all([get(), get()])).toEqual([1, 1]);
    expect(await get()).toBe(1);
    expect(calls).toBe(1);
  });

  it('does not keep a failure: the next call tries again', async () => {
    let calls = 0;
    const get = onceUntilFailure(async () => {
      calls++;
      if (calls === 1) throw new Error('not yet');
      return 'ready';
    });
    await expect(get()).rejects.toThrow('not yet');
    expect(await get()).toBe('ready');
    expect(await get()).toBe('ready');
    expect(calls).toBe(2);
  });
});
