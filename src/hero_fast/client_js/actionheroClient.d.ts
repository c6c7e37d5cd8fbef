// Type declarations of the hero-fast browser client (actionheroClient.js / .min.js).
// The script defines the globals ActionheroClient and ActionheroWebsocketClient (the same
// class) and, under CommonJS, module.exports = ActionheroClient.

export type ActionheroClientState = "disconnected" | "connecting" | "connected" | "reconnecting";

export interface ReconnectOptions {
  /** Shortest wait before a reconnect attempt (ms). */
  min?: number;
  /** Longest wait between attempts (ms); null = no limit. */
  max?: number | null;
  /** Attempts after a lost connection before the client gives up; null = no limit. */
  retries?: number | null;
  /** Back-off multiplier between attempts (each wait also gets ±25% jitter). */
  factor?: number;
}

export interface ActionheroClientOptions {
  /** Server URL, http(s):// or ws(s)://; default: config clientUrl (the page's origin). */
  url?: string | null;
  /** WebSocket upgrade path (config servers.websocket.server.pathname). */
  pathname?: string;
  /** Fingerprint cookie / query parameter name (config servers.web.fingerprint.cookieKey). */
  cookieKey?: string;
  /** A fingerprint to hand to the server as a query parameter (for cross-origin pages).
   * Without one, a client that has no fingerprint cookie (the server knows it by the id of
   * its first connection) hands that id over whenever it reconnects, to recover. */
  fingerprint?: string;
  /** HTTP path of actionWeb() calls. */
  apiPath?: string;
  reconnect?: ReconnectOptions;
  /** Ms a connection may take to open, and a request may wait in the offline queue; 0 = no limit. */
  timeout?: number;
  /** Ms of server silence after which the client pings; 0 disables the heartbeat watch. */
  ping?: number;
  /** Ms the client then waits for anything from the server before it treats it as dead. */
  pong?: number;
  /** When to reconnect: "disconnect" (connection lost), "timeout" (did not open / went
   * silent), "online" (the browser is back online); false: never. */
  strategy?: Array<"online" | "timeout" | "disconnect"> | false;
  /** Accepted for compatibility: this client connects when connect() is called. */
  manual?: boolean;
  /** Always true: the client uses the browser's native WebSocket. */
  websockets?: boolean;
  /** Listen to the browser's online/offline events. */
  network?: boolean;
  /** Extra WebSocket options: `protocols` (subprotocols to offer). */
  transport?: { protocols?: string | string[] } & Record<string, unknown>;
  /** Requests kept while offline; null = no limit. */
  queueSize?: number | null;
}

/** Every response carries `context: "response"` and the request's `messageId`; a failed
 * request carries `error` (a server error, or a client one such as an offline-queue timeout). */
export interface ActionheroResponse<Data = any> {
  context: "response";
  messageId: number | string;
  error?: string | null;
  status?: string;
  data?: Data;
  [field: string]: any;
}

export interface ConnectionDetails {
  id: string;
  fingerprint: string;
  remoteIP: string | null;
  remotePort: number | null;
  params: Record<string, unknown>;
  connectedAt: number;
  rooms: string[];
  totalActions: number;
  pendingActions: number;
}

export interface RoomView {
  room: string;
  members: Record<string, { id: string; joinedAt: number }>;
  membersCount: number;
}

export interface FileResponse extends ActionheroResponse<undefined> {
  content: string | null;
  error: string | null;
  length: number;
  messageCount: number;
  mime: string;
  lastModified?: number | null;
  /** "base64" when the file is binary and `content` is its base64 text. */
  encoding?: "base64";
}

export interface ChatMessage<M = unknown> {
  context: "user";
  message: M;
  room: string;
  from: string | number;
  sentAt: number;
  /** A room with history numbers its messages: 1, 2, 3, ... in `epoch`. */
  offset?: number;
  /** Names the room's numbering; it changes when the room's history is lost. */
  epoch?: string;
}

/** Where a room's numbering is (roomAdd of a room with history). */
export interface RoomPosition {
  offset: number;
  epoch: string;
}

/** What a room lost across a reconnect (see docs/delivery.md). */
export interface LostMessages {
  reason: "no history" | "history too short" | "epoch changed" | "no offset" | "room destroyed" | string;
  /** The first and last missing offsets, when known. */
  from: number | null;
  to: number | null;
}

/** How a reconnect to a server that offers connection state recovery went. */
export interface RecoveryOutcome {
  /** true: the same id, the same rooms, every missed room message and push was delivered once. */
  recovered: boolean;
  /** When `recovered` is false: "expired" (nothing was kept: a new connection, rooms joined
   * again with roomAdd) or "messages lost" (id, rooms and session are back; see `lost`). */
  reason?: "expired" | "messages lost" | string;
  /** The connection id now (the old one unless expired). */
  id: string | null;
  /** The rooms restored without roomAdd. */
  rooms: string[];
  lost?: Record<string, LostMessages>;
  /** Pushes that were dropped while it was away. */
  pushesLost?: number;
}

export interface ReconnectingInfo {
  attempt: number;
  retries: number;
  delay: number;
}

export interface ServerMessage {
  context?: string;
  /** A push to this connection, numbered 1, 2, 3, ... when the server offers recovery. */
  pushSeq?: number;
  [field: string]: any;
}

export interface WelcomeMessage {
  welcome: string;
  context: "api";
  /** Present when the server offers connection state recovery (the client keeps the token). */
  recovery?: { token: string; ttl: number };
}

export type Callback<T> = (response: T) => void;

export interface ActionheroClientEvents {
  /** Connected (again): rooms rejoined, details fetched. */
  connected: (details: ActionheroResponse<ConnectionDetails> | null) => void;
  /** The client stopped: disconnect(), "primus::server::close", or it gave up reconnecting. */
  disconnected: () => void;
  error: (error: Error) => void;
  /** A reconnect succeeded (after "connected"). */
  reconnect: (details: ActionheroResponse<ConnectionDetails> | null) => void;
  /** After "reconnect", when the client came back to a server that offers connection state
   * recovery: whether everything missed was delivered, and what was not. */
  recovered: (outcome: RecoveryOutcome) => void;
  /** A reconnect attempt is scheduled. */
  reconnecting: (info: ReconnectingInfo) => void;
  /** Every message from the server (not the Primus heartbeat strings). */
  message: (message: ServerMessage) => void;
  /** A server push with context "alert". */
  alert: (message: ServerMessage) => void;
  /** A server push with context "api" (other than the welcome) or an unknown context. */
  api: (message: ServerMessage) => void;
  /** The welcome message sent on every connect. */
  welcome: (message: WelcomeMessage) => void;
  /** A chat message in a room this client is in. */
  say: (message: ChatMessage) => void;
  /** The browser went offline / came back online (options.network). */
  offline: () => void;
  online: () => void;
}

export declare class ActionheroClient {
  constructor(options?: ActionheroClientOptions);

  options: Required<Omit<ActionheroClientOptions, "fingerprint">> & ActionheroClientOptions;
  state: ActionheroClientState;
  /** This connection's id and fingerprint (from the latest details). */
  id: string | null;
  fingerprint: string | null;
  /** The latest detailsView response (fetched on every (re)connect). */
  details: ActionheroResponse<ConnectionDetails> | null;
  /** The rooms this client is in; restored (recovery) or rejoined after every reconnect. */
  rooms: string[];
  welcomeMessage: string | null;
  /** The last messageId used (ids only grow). */
  messageId: number;

  connect(callback: (error: Error | null, details?: ActionheroResponse<ConnectionDetails> | null) => void): void;
  connect(): Promise<ActionheroResponse<ConnectionDetails> | null>;
  /** Close for good (no reconnecting); idempotent. connect() may open it again. */
  disconnect(): void;
  end(): void;

  action<R = any>(name: string, params: Record<string, unknown> | null | undefined, callback: Callback<ActionheroResponse & R>): void;
  action<R = any>(name: string, callback: Callback<ActionheroResponse & R>): void;
  action<R = any>(name: string, params?: Record<string, unknown> | null): Promise<ActionheroResponse & R>;
  /** The action over HTTP (POST apiPath/name, JSON body); never used implicitly. */
  actionWeb<R = any>(name: string, params: Record<string, unknown> | null | undefined, callback: Callback<R & { error?: string }>): void;
  actionWeb<R = any>(name: string, callback: Callback<R & { error?: string }>): void;
  actionWeb<R = any>(name: string, params?: Record<string, unknown> | null): Promise<R & { error?: string }>;

  say(room: string, message: unknown, callback: Callback<ActionheroResponse>): void;
  say(room: string, message: unknown): Promise<ActionheroResponse>;
  file(name: string, callback: Callback<FileResponse>): void;
  file(name: string): Promise<FileResponse>;
  detailsView(callback: Callback<ActionheroResponse<ConnectionDetails>>): void;
  detailsView(): Promise<ActionheroResponse<ConnectionDetails>>;
  roomView(room: string, callback: Callback<ActionheroResponse<RoomView>>): void;
  roomView(room: string): Promise<ActionheroResponse<RoomView>>;
  roomAdd(room: string, callback: Callback<ActionheroResponse<true> & { history?: RoomPosition }>): void;
  roomAdd(room: string): Promise<ActionheroResponse<true> & { history?: RoomPosition }>;
  roomLeave(room: string, callback: Callback<ActionheroResponse<true>>): void;
  roomLeave(room: string): Promise<ActionheroResponse<true>>;
  documentation(callback: Callback<ActionheroResponse<Record<string, unknown>>>): void;
  documentation(): Promise<ActionheroResponse<Record<string, unknown>>>;
  /** Send any request object (a verb in `event`); the response is matched by messageId. */
  send(payload: Record<string, unknown>, callback: Callback<ActionheroResponse>): void;
  send(payload: Record<string, unknown>): Promise<ActionheroResponse>;

  /** The WebSocket URL the client connects to. */
  websocketUrl(): string;
  /** The wait before reconnect attempt `attempt` (1, 2, ...). */
  backoff(attempt: number): number;
  /** Dispatch one server message by its context. */
  handleMessage(message: ServerMessage): void;

  on<E extends keyof ActionheroClientEvents>(event: E, listener: ActionheroClientEvents[E]): this;
  addListener<E extends keyof ActionheroClientEvents>(event: E, listener: ActionheroClientEvents[E]): this;
  once<E extends keyof ActionheroClientEvents>(event: E, listener: ActionheroClientEvents[E]): this;
  off<E extends keyof ActionheroClientEvents>(event: E, listener?: ActionheroClientEvents[E]): this;
  removeListener<E extends keyof ActionheroClientEvents>(event: E, listener?: ActionheroClientEvents[E]): this;
  removeAllListeners(event?: keyof ActionheroClientEvents): this;
  listeners(event: keyof ActionheroClientEvents): Function[];
  emit(event: string, ...args: unknown[]): boolean;

  static defaults(): ActionheroClientOptions;
}

export { ActionheroClient as ActionheroWebsocketClient };
export default ActionheroClient;

declare global {
  interface Window {
    ActionheroClient: typeof ActionheroClient;
    ActionheroWebsocketClient: typeof ActionheroClient;
  }
}
