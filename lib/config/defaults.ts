/** Defaults, in one place (the README's reference lists them). */
export const DEFAULTS = {
  admission: {
    noMatchingPolicy: 'deny',
    cacheTtlSeconds: 300,
    cacheMaxEntries: 10_000,
    // The Kubernetes webhook timeout is 10 s by default: answer before the apiserver gives up.
    deadlineMs: 9_000,
    maxSignatures: 64,
    maxReviewBytes: 8 * 1024 * 1024,
  },
  server: {
    port: 8080,
    host: '127.0.0.1',
    maxBodyBytes: 3 * 1024 * 1024,
    maxInFlight: 256,
    // Kubernetes waits terminationGracePeriodSeconds (30 s by default) before SIGKILL.
    shutdownGraceMs: 20_000,
  },
  journal: {
    file: 'journal.db',
    maxAttempts: 8,
    retryBaseMs: 1_000,
    retryMaxMs: 300_000,
    concurrency: 8,
  },
  reverify: {
    intervalMs: 300_000,
    windowDays: 7,
    concurrency: 4,
  },
  ledger: {
    retentionDays: 90,
  },
} as const;
