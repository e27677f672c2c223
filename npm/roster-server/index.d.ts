export interface StartOptions {
  /** The roster binary; default `$ROSTER_BIN`, else the platform package's. */
  bin?: string;
  /** Load the demo data (default true); `email`, `apiKey` and `accountId` are the demo's. */
  demo?: boolean;
  /** A fixture file loaded beside the demo; a reset goes back to both. */
  seed?: string;
  /** Run on this PostgreSQL database instead of SQLite in memory. */
  databaseURL?: string;
  /** More arguments for `roster serve`. */
  args?: string[];
  /** How long to wait for the server to answer (default 60,000). */
  timeoutMs?: number;
}

/** A fault of the control plane (docs/emulator.md, "Faults"). */
export interface Fault {
  method?: string;
  path?: string;
  caller?: string;
  status?: number;
  code?: number;
  message?: string;
  retry_after?: number;
  delay_ms?: number;
  times?: number;
  probability?: number;
  body?: unknown;
}

export interface JournalEntry {
  at: string;
  method: string;
  path: string;
  query: string | null;
  headers: Record<string, string>;
  body: unknown;
  status: number;
  caller: string | null;
  ray_id: string;
}

export interface Roster {
  /** The server's root, e.g. http://127.0.0.1:41234 */
  url: string;
  /** The API's base for an SDK's `baseURL`: `${url}/client/v4` */
  baseURL: string;
  email?: string;
  apiKey?: string;
  accountId?: string;
  /** Back to the seeded state: data, clock, faults, journal, allowances. */
  reset(): Promise<unknown>;
  snapshot(name: string): Promise<unknown>;
  restore(name: string): Promise<unknown>;
  advanceClock(seconds: number): Promise<unknown>;
  setClock(iso: string): Promise<unknown>;
  /** Adds a fault; resolves to its id. */
  addFault(fault: Fault): Promise<string>;
  clearFaults(): Promise<unknown>;
  /** The journal, oldest first. */
  requests(filters?: { method?: string; path?: string; status?: number; limit?: number }): Promise<JournalEntry[]>;
  /** A user with a global API key, gone at the next reset. */
  createUser(
    email: string,
    fields?: { first_name?: string; last_name?: string; api_key?: string; two_factor_authentication_enabled?: boolean },
  ): Promise<{ id: string; email: string; api_key: string; two_factor_authentication_enabled: boolean }>;
  /** The last lines of the server's log. */
  logTail(): string;
  /** SIGTERM (SIGKILL after 10 s) and removes the server's files. */
  stop(): Promise<void>;
}

export function start(options?: StartOptions): Promise<Roster>;
export function binaryPath(): string;
