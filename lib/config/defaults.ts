/** Defaults, in one place (the README's reference lists them). */
export const DEFAULTS = {
  admission: {
    noMatchingPolicy: 'deny',
    cacheTtlSeconds: 300,
    cacheMaxEntries: 10_000,
  },
  server: {
    port: 8080,
    host: '127.0.0.1',
    maxBodyBytes: 3 * 1024 * 1024,
  },
} as const;
