import { type BackoffPolicy, createBackoff } from "../lib/backoff.ts";
import { AppError } from "../lib/errors.ts";
import { sleep } from "../lib/sleep.ts";

/**
 * Database errors that say "try again", not "this is wrong" (style habit 18): InnoDB rolls a deadlock's
 * victim back and expects it to be re-issued (MySQL manual, "How to Minimize and Handle Deadlocks").
 * - `conflict`: a deadlock (`ER_LOCK_DEADLOCK`, 1213), a lock wait timeout (`ER_LOCK_WAIT_TIMEOUT`, 1205),
 *   SQLite's `SQLITE_BUSY` (another process holds the file's write lock past `busy_timeout`);
 * - `connection`: the connection was lost or could not be made (`PROTOCOL_CONNECTION_LOST`, `ECONNRESET`,
 *   `EPIPE`, `ETIMEDOUT`, `ECONNREFUSED`, server gone away 2006/2013, killed 1927, shutting down 1053, or
 *   any error mysql2 marks `fatal`: it closed the connection).
 */
export type TransientKind = "conflict" | "connection";

const conflictCodes = new Set(["ER_LOCK_DEADLOCK", "ER_LOCK_WAIT_TIMEOUT"]);
const conflictErrnos = new Set([1213, 1205]);
const connectionCodes = new Set([
  "PROTOCOL_CONNECTION_LOST",
  "PROTOCOL_SEQUENCE_TIMEOUT",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "ECONNREFUSED",
  "ER_SERVER_SHUTDOWN",
  "ER_CONNECTION_KILLED",
  "CR_SERVER_GONE_ERROR",
  "CR_SERVER_LOST",
]);
const connectionErrnos = new Set([2006, 2013, 1053, 1927, 4031]);

/** What kind of transient database error `error` (or an error in its cause chain) is, if any. */
export function transientKind(error: unknown): TransientKind | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current instanceof Error; depth++) {
    const { code, errno, fatal } = current as { code?: unknown; errno?: unknown; fatal?: unknown };
    if (typeof code === "string" && (conflictCodes.has(code) || code.startsWith("SQLITE_BUSY"))) {
      return "conflict";
    }
    if (typeof errno === "number" && conflictErrnos.has(errno)) return "conflict";
    if (typeof code === "string" && connectionCodes.has(code)) return "connection";
    if (typeof errno === "number" && connectionErrnos.has(errno)) return "connection";
    if (fatal === true) return "connection";
    current = current.cause;
  }
  return undefined;
}

/** Between attempts: 10–20 ms, 20–40, 40–80, 80–160, 160–320 (the jitter spreads writers that collided). */
export const transientRetryPolicy: BackoffPolicy = { baseMs: 10, maxMs: 320, jitterRatio: 1 };
export const TRANSIENT_ATTEMPTS = 6;

export interface TransientRetryOptions {
  readonly attempts?: number;
  readonly policy?: BackoffPolicy;
  readonly random?: () => number;
  /** Called before each retry (for a debug log). */
  readonly onRetry?: (kind: TransientKind, attempt: number, error: unknown) => void;
  /** Called when the attempts are spent, with the error about to be thrown. */
  readonly onGiveUp?: (error: AppError) => void;
}

/** Runs a unit of work, retrying it on transient database errors; see `retryTransient`. */
export type RetryTransient = <T>(work: () => Promise<T>) => Promise<T>;

/**
 * Runs `work` — one unit of work: a single statement, or a whole transaction, never part of one — and runs
 * it again when it fails with a transient error, up to `attempts` times in all, waiting with jitter between
 * attempts. Then it throws a retryable `AppError`: `aborted` for a conflict (gRPC ABORTED), `unavailable`
 * for the connection (UNAVAILABLE), the last error as its cause. Any other error is thrown at once.
 *
 * A statement whose connection was lost may have committed before the answer was lost; the work is re-run
 * anyway, so it must be safe to run twice (every write of this service's RPCs is: an upsert, a delete, a
 * conditional update, or a transaction guarded by a unique key).
 */
export async function retryTransient<T>(
  work: () => Promise<T>,
  options: TransientRetryOptions = {},
): Promise<T> {
  const attempts = Math.max(1, options.attempts ?? TRANSIENT_ATTEMPTS);
  const backoff = createBackoff(options.policy ?? transientRetryPolicy, options.random);
  for (let attempt = 1; ; attempt++) {
    try {
      return await work();
    } catch (error) {
      const kind = transientKind(error);
      if (!kind) throw error;
      if (attempt >= attempts) {
        const final = givenUp(kind, attempts, error);
        options.onGiveUp?.(final);
        throw final;
      }
      options.onRetry?.(kind, attempt, error);
      await sleep(backoff.failed());
    }
  }
}

function givenUp(kind: TransientKind, attempts: number, cause: unknown): AppError {
  return kind === "conflict"
    ? new AppError(
        "aborted",
        `the database kept reporting conflicts with concurrent work (${attempts} attempts); try again`,
        { cause },
      )
    : new AppError("unavailable", "the database is unreachable; try again", { cause });
}
