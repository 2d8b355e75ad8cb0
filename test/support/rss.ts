/**
 * The resident set size of this process, as the kernel counts it (`VmRSS` in /proc/self/status),
 * and a sampler that keeps its peak: for tests proving that hostile input costs bounded memory.
 *
 *   const sampler = startRssSampler(50);
 *   ...
 *   const { idle, peak, last } = sampler.stop();
 */
import { readFileSync } from 'node:fs';

/** VmRSS in bytes (Linux); falls back to process.memoryUsage.rss() elsewhere. */
export function rssBytes(): number {
  try {
    const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (match) return Number(match[1]) * 1024;
  } catch {
    // not Linux
  }
  return process.memoryUsage.rss();
}

/** A running sampler. */
export interface RssSampler {
  /** Stops sampling; `idle` is the first sample, `peak` the largest, `last` one taken now. */
  stop(): { idle: number; peak: number; last: number };
}

/** Samples RSS every `everyMs` from now until `stop()`. */
export function startRssSampler(everyMs = 50): RssSampler {
  const idle = rssBytes();
  let peak = idle;
  const timer = setInterval(() => {
    peak = Math.max(peak, rssBytes());
  }, everyMs);
  return {
    stop() {
      clearInterval(timer);
      const last = rssBytes();
      return { idle, peak: Math.max(peak, last), last };
    },
  };
}

export const MB = 1_000_000;
