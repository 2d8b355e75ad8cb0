/**
 * An async value worked out on first use and kept, shared by every caller while it is pending. A
 * failure is not kept: the next call tries again (a key file not generated yet, a KMS key
 * disabled for a while, a throttled call).
 */
export function onceUntilFailure<T>(compute: () => Promise<T>): () => Promise<T> {
  let pending: Promise<T> | undefined;
  return () => {
    pending ??= compute().catch((err: unknown) => {
      pending = undefined;
      throw err;
    });
    return pending;
  };
}
