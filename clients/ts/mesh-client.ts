/**
 * A thin typed client of the mesh coordinator: openapi-fetch's `createClient<paths>()` over the
 * types generated from openapi.yaml (`schema.d.ts`), plus the two things openapi-fetch does not do
 * by itself: bearer authentication (the admin token, or a game server's own token and id) and
 * reading the server-sent event stream as typed `MeshEvent`s.
 *
 *   const mesh = createMeshClient({ baseUrl: 'http://127.0.0.1:8080' });  // or every replica's URL
 *   const metrics = ok(await mesh.api.GET('/mesh/failover_metrics'));
 *   const server = mesh.asServer(id, token);
 *   const reply = ok(await server.POST('/mesh/servers/{server_id}/heartbeat', { params: { path: { server_id: id } }, body }));
 */
import createClient, { type Client, type Middleware } from 'openapi-fetch';
import { CoordinatorUrls, leaderFollowingFetch } from './coordinator-urls.ts';
import type { components, operations, paths } from './schema.d.ts';

export { CoordinatorUrls, leaderFollowingFetch };

export type { components, operations, paths };

/** Every schema of the contract by name. */
export type Schemas = components['schemas'];
/** The `data` of one server-sent event. */
export type MeshEvent = Schemas['MeshEvent'];
/** An RFC 9457 problem document, as every error answer carries. */
export type Problem = Schemas['Problem'];
/** The typed openapi-fetch client. */
export type MeshApi = Client<paths>;

/** How to reach the coordinator. */
export interface MeshClientOptions {
  /**
   * `http://host:port` of the coordinator, or of every replica (`--store etcd`): requests go to the
   * leader, found by following followers' 307s, and move on to the next replica when one fails.
   */
  readonly baseUrl: string | readonly string[];
  /** `MESH_ADMIN_TOKEN`; sent on every request that carries no `Authorization` of its own. */
  readonly adminToken?: string;
  /** A `fetch` to use instead of the global one. */
  readonly fetch?: (input: Request) => Promise<Response>;
}

/** An open event stream. */
export interface EventSubscription extends AsyncIterable<MeshEvent> {
  /** Id of the last event read (`<boot>.<seq>`), for `Last-Event-ID` on reconnect. */
  readonly lastEventId: string | undefined;
  /**
   * Set when the service said it no longer holds the event named by `lastEventId` (it restarted, or
   * the gap outgrew its window): events may have been missed; re-read the state you track.
   */
  readonly missed: { readonly lastEventId: string; readonly detail: string } | undefined;
  /** Closes the connection; the iteration then ends. */
  close(): void;
}

/** The client. */
export interface MeshClient {
  /** Every operation of openapi.yaml, by path and method, with typed parameters, bodies and answers. */
  readonly api: MeshApi;
  /** The same operations as a game server: its bearer token, and its id in `X-Server-Id`. */
  asServer(serverId: string, token: string): MeshApi;
  /**
   * Opens `GET /mesh/events`; resolves once the stream is connected, so that no later event is
   * missed. With `lastEventId`, the retained events after it are replayed first (see `missed`).
   */
  events(options?: { lastEventId?: string; signal?: AbortSignal }): Promise<EventSubscription>;
}

/** An answer that was not a success, with its problem document. */
export class MeshApiError extends Error {
  constructor(readonly status: number, readonly problem: Problem | undefined, readonly url: string) {
    super(`${status} from ${url}: ${problem?.detail ?? problem?.title ?? 'no problem document'}`);
    this.name = 'MeshApiError';
  }
}

/** The data of a successful answer; throws {@link MeshApiError} for an error answer. */
export function ok<R extends { data?: unknown; error?: unknown; response: Response }>(result: R): NonNullable<R['data']> {
  if (result.error !== undefined || !result.response.ok) {
    throw new MeshApiError(result.response.status, result.error as Problem | undefined, result.response.url);
  }
  return result.data as NonNullable<R['data']>;
}

/** A player's action as `submitAction` takes it. */
export type PlayerAction = Schemas['SubmitActionRequest'];

/**
 * Sends a player's action to the coordinator. Without `unreachableEpoch` the coordinator buffers it
 * only while the region has no serving primary (otherwise 409 names the primary to send to); with
 * it, the player says it cannot reach the primary of that epoch, and the action is buffered for
 * that primary to collect unless the region moved on to a newer epoch (409 names its primary).
 */
export function submitAction(api: MeshApi, regionId: string, action: Omit<PlayerAction, 'unreachable_primary' | 'known_epoch'>,
  options: { unreachableEpoch?: number; signal?: AbortSignal } = {}) {
  const body: PlayerAction = options.unreachableEpoch === undefined ? { ...action }
    : { ...action, unreachable_primary: true, known_epoch: options.unreachableEpoch };
  return api.POST('/mesh/regions/{region_id}/actions', {
    params: { path: { region_id: regionId } }, body, ...(options.signal ? { signal: options.signal } : {}),
  });
}

/** Sets `Authorization` (and `X-Server-Id`) unless the request already has its own. */
function bearer(token: string, serverId?: string): Middleware {
  return {
    onRequest({ request }) {
      if (!request.headers.has('authorization')) request.headers.set('authorization', `Bearer ${token}`);
      if (serverId !== undefined && !request.headers.has('x-server-id')) request.headers.set('x-server-id', serverId);
      return request;
    },
  };
}

/** Creates a client. */
export function createMeshClient(options: MeshClientOptions): MeshClient {
  const urls = new CoordinatorUrls(options.baseUrl);
  const send = leaderFollowingFetch(urls, options.fetch);
  const make = (auth?: Middleware): MeshApi => {
    const api = createClient<paths>({ baseUrl: urls.current(), fetch: send });
    if (auth) api.use(auth);
    return api;
  };
  const api = make(options.adminToken === undefined ? undefined : bearer(options.adminToken));
  return {
    api,
    asServer: (serverId, token) => make(bearer(token, serverId)),
    events: (eventOptions = {}) => openEvents(api, eventOptions),
  };
}

async function openEvents(api: MeshApi, options: { lastEventId?: string; signal?: AbortSignal }): Promise<EventSubscription> {
  const abort = new AbortController();
  options.signal?.addEventListener('abort', () => abort.abort(), { once: true });
  const header = options.lastEventId === undefined ? undefined : { 'Last-Event-ID': options.lastEventId };
  const result = await api.GET('/mesh/events', { parseAs: 'stream', signal: abort.signal, params: { header } });
  const body = ok(result);
  let lastEventId = options.lastEventId;
  let missed: EventSubscription['missed'];
  async function* read(): AsyncGenerator<MeshEvent> {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    try {
      for (;;) {
        const chunk = await reader.read().catch((error: unknown) => {
          if (abort.signal.aborted) return { done: true as const, value: undefined };
          throw error;
        });
        if (chunk.done) return;
        buffer += chunk.value.replace(/\r\n?/g, '\n');
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const frame = parseFrame(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
          if (frame.data === undefined) continue;
          if (frame.event === 'events_missed') {
            const notice = JSON.parse(frame.data) as { last_event_id: string; detail: string };
            missed = { lastEventId: notice.last_event_id, detail: notice.detail };
            continue;
          }
          if (frame.id !== undefined) lastEventId = frame.id;
          yield JSON.parse(frame.data) as MeshEvent;
        }
      }
    } finally {
      abort.abort();
      reader.releaseLock();
    }
  }
  const events = read();
  return {
    [Symbol.asyncIterator]: () => events,
    get lastEventId() { return lastEventId; },
    get missed() { return missed; },
    close: () => abort.abort(),
  };
}

/** One SSE frame: the `id`, `event` and `data` fields (comments and `retry` are skipped). */
function parseFrame(text: string): { id?: string; event?: string; data?: string } {
  const frame: { id?: string; event?: string; data?: string } = {};
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (field === 'data') frame.data = frame.data === undefined ? value : `${frame.data}\n${value}`;
    else if (field === 'id') frame.id = value;
    else if (field === 'event') frame.event = value;
  }
  return frame;
}
