/**
 * Invariant checks of the core's modules: `invariantFor(prefix)` gives a module its `invariant`,
 * which throws `Error("<prefix>: <message>")` when the condition is false. A message may be passed
 * as a function, built only when the check fails, so that hot paths pay nothing for it.
 */

/** Throws when `condition` is false. */
export type Invariant = (condition: unknown, message: string | (() => string)) => asserts condition;

/** The invariant check of one module, its errors prefixed with `prefix`. */
export function invariantFor(prefix: string): Invariant {
  return (condition, message) => {
    if (!condition) throw new Error(`${prefix}: ${typeof message === 'function' ? message() : message}`);
  };
}
