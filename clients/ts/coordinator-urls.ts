/**
 * The coordinators a client knows (replicas on etcd: one leads, the others redirect to it) and the
 * one it talks to now. A 307 from a follower names the leader; a coordinator that cannot be reached,
 * or answers 503 `no-leader`, is left for the next one in the list. `leaderFollowingFetch` does this
 * for HTTP requests: it follows the redirect itself, keeping `Authorization` (which `fetch` drops on
 * a redirect to another origin) and the body, and remembers the leader for the next request.
 */

/** Problem type of a coordinator that knows no leader now. */
const NO_LEADER = 'https://mesh-coordinator.dev/problems/no-leader';

/** The list and the current choice. */
export class CoordinatorUrls {
  private readonly urls: string[];
  private index = 0;
  private leader: string | undefined;

  /** @param urls base URLs (`http://host:port`), in the order to try them. */
  constructor(urls: string | readonly string[]) {
    this.urls = (typeof urls === 'string' ? [urls] : [...urls]).map((url) => new URL(url).origin);
    if (this.urls.length === 0) throw new Error('at least one coordinator URL is needed');
  }

  /** Where to send now: the leader last named, else the current entry of the list. */
  current(): string {
    return this.leader ?? this.urls[this.index]!;
  }

  /** A coordinator named the leader (a 307's `Location`, a session closed with its name). */
  leaderIs(url: string): void {
    this.leader = new URL(url).origin;
  }

  /** The current coordinator failed (unreachable, or no leader known): move on to the next. */
  failed(): void {
    if (this.leader !== undefined) this.leader = undefined;
    else this.index = (this.index + 1) % this.urls.length;
  }

  /** How many coordinators the list holds. */
  get size(): number {
    return this.urls.length;
  }
}

/** Bounds of {@link leaderFollowingFetch}. */
export interface FollowOptions {
  /** Most attempts per request (redirects and retries together); default 3 per listed coordinator + 2. */
  readonly maxAttempts?: number;
  /** Wait before retrying after a failure, ms (default 200). */
  readonly retryDelayMs?: number;
}

/**
 * A `fetch` for openapi-fetch that sends every request to the current coordinator, follows 307s to
 * the leader and moves on when a coordinator fails. A request's body is read once, so that it can be
 * sent again unchanged; streamed answers (the event stream) pass through.
 */
export function leaderFollowingFetch(urls: CoordinatorUrls, inner: (request: Request) => Promise<Response> = (r) => fetch(r),
  options: FollowOptions = {}): (request: Request) => Promise<Response> {
  const maxAttempts = options.maxAttempts ?? 3 * urls.size + 2;
  const retryDelayMs = options.retryDelayMs ?? 200;
  return async (request) => {
    const body = request.body === null ? undefined : await request.arrayBuffer();
    const target = new URL(request.url);
    const path = `${target.pathname}${target.search}`;
    let last: Response | undefined;
    let lastError: unknown;
    for (let attempt = 0; attempt < maxAttempts; attempt++) {
      const url = new URL(path, urls.current());
      try {
        const response = await inner(new Request(url, {
          method: request.method, headers: request.headers, body, redirect: 'manual', signal: request.signal,
        }));
        const location = response.headers.get('location');
        if ((response.status === 307 || response.status === 308) && location !== null) {
          urls.leaderIs(new URL(location, url).toString());
          last = response;
          continue;
        }
        if (response.status === 503 && await isNoLeader(response)) {
          urls.failed();
          last = response;
          await delay(retryDelayMs);
          continue;
        }
        return response;
      } catch (error) {
        // Also when the caller gave up waiting: a replica that does not answer in time (a paused
        // process accepts connections and never replies) is left, or every request would wait on it.
        urls.failed();
        if (request.signal.aborted) throw error;
        lastError = error;
        await delay(retryDelayMs);
      }
    }
    if (last !== undefined) return last;
    throw lastError;
  };
}

async function isNoLeader(response: Response): Promise<boolean> {
  if (!/problem\+json/.test(response.headers.get('content-type') ?? '')) return false;
  const problem = await response.clone().json().catch(() => undefined) as { type?: string } | undefined;
  return problem?.type === NO_LEADER;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
