/** Guards for untyped JSON (parsed bodies, events, manifests, config documents). */

/** A JSON object (not null, not an array). */
export const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);
