/**
 * Errors that cross a module boundary carry a stable code, whether retrying can help, and their cause.
 * Domain code throws these; exactly one place maps them to gRPC (src/api/error-mapping.ts).
 */
export type ErrorCode =
  | "invalid_argument"
  | "not_found"
  | "unauthenticated"
  | "conflict"
  | "unavailable"
  /** A conflict with concurrent work (a deadlock, a lock wait timeout) that persisted: try the call again. */
  | "aborted"
  | "broker_unavailable"
  | "deferred"
  | "poison"
  | "failed_precondition"
  | "deadline_exceeded"
  | "cancelled"
  | "internal";

export interface AppErrorOptions {
  readonly retryable?: boolean;
  readonly cause?: unknown;
  /** For `invalid_argument`: the request field at fault, e.g. `payload.user_id`. */
  readonly field?: string;
  /** For `deferred`: how long to wait before the work is tried again. */
  readonly retryAfterMs?: number;
  /** A finer machine-readable reason, e.g. `missing_param` (the API maps it to SmartFlow's status codes). */
  readonly reason?: string;
}

export class AppError extends Error {
  override readonly name = "AppError";
  readonly code: ErrorCode;
  readonly retryable: boolean;
  readonly field: string | undefined;
  readonly retryAfterMs: number | undefined;
  readonly reason: string | undefined;

  constructor(code: ErrorCode, message: string, options: AppErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.retryable = options.retryable ?? defaultRetryable(code);
    this.field = options.field;
    this.retryAfterMs = options.retryAfterMs;
    this.reason = options.reason;
  }

  static is(error: unknown, code?: ErrorCode): error is AppError {
    return error instanceof AppError && (code === undefined || error.code === code);
  }
}

function defaultRetryable(code: ErrorCode): boolean {
  return (
    code === "unavailable" ||
    code === "aborted" ||
    code === "broker_unavailable" ||
    code === "deferred" ||
    code === "internal"
  );
}

/** A one-line description of any thrown value, including the cause chain, for logs and `last_error` columns. */
export function describeError(error: unknown): string {
  const parts: string[] = [];
  let current: unknown = error;
  for (let depth = 0; current !== undefined && current !== null && depth < 4; depth++) {
    if (current instanceof Error) {
      parts.push(current.message || current.name);
      current = current.cause;
    } else {
      parts.push(String(current));
      break;
    }
  }
  return parts.join(": ");
}
