/**
 * "Answered means on disk": handlers that report a persisted change wait for the store before
 * answering. When the write fails, the change is still in memory (the core cannot take it back)
 * and the next successful write will carry it, but nobody can promise that it would survive a
 * crash now, so the answer is a 503 that says exactly that instead of a success.
 */
import { NotDurableError } from '../deps.ts';
import { HttpProblem, retryAfterSeconds } from '../problem.ts';

/** How long a client should wait before retrying after a failed write. */
export const DURABILITY_RETRY_AFTER_MS = 1000;

/**
 * Waits for a durable command (`host.runDurably`, `host.setupTest`, ...). Throws a 503 problem when
 * its write fails; `outcome` is the sentence that tells the client what the failure means for its
 * request.
 */
export async function durably<T>(pending: Promise<T>, outcome: string | ((value: T) => string)): Promise<T> {
  try {
    return await pending;
  } catch (error) {
    if (!(error instanceof NotDurableError)) throw error;
    // The store has already logged the cause; the client learns only what it can act on.
    throw new HttpProblem({
      status: 503, slug: 'not-durable',
      detail: `Writing to disk failed. ${typeof outcome === 'string' ? outcome : outcome(error.value as T)}`,
      extra: { retry_after_ms: DURABILITY_RETRY_AFTER_MS },
      headers: { 'Retry-After': retryAfterSeconds(DURABILITY_RETRY_AFTER_MS) },
    });
  }
}
