import { activeTraceFields } from "./trace-context.ts";

/**
 * Structured JSON logs, one object per line, on stdout. Components take a `Logger`, never `console`. A line
 * written while a span is active (the handling of one notification, one RPC) carries its `trace_id` and
 * `span_id`; fields given to the line win over them.
 */
export type LogLevel = "debug" | "info" | "warn" | "error" | "silent";
export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  child(bindings: LogFields): Logger;
}

const rank: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

export function createLogger(
  level: LogLevel,
  write: (line: string) => void = (line) => process.stdout.write(line),
  bindings: LogFields = {},
): Logger {
  const emit = (at: Exclude<LogLevel, "silent">, msg: string, fields?: LogFields) => {
    if (rank[at] < rank[level]) return;
    const record = {
      level: at,
      time: new Date().toISOString(),
      msg,
      ...activeTraceFields(),
      ...bindings,
      ...fields,
    };
    write(`${JSON.stringify(record, replaceErrors)}\n`);
  };
  return {
    debug: (msg, fields) => emit("debug", msg, fields),
    info: (msg, fields) => emit("info", msg, fields),
    warn: (msg, fields) => emit("warn", msg, fields),
    error: (msg, fields) => emit("error", msg, fields),
    child: (more) => createLogger(level, write, { ...bindings, ...more }),
  };
}

function replaceErrors(_key: string, value: unknown): unknown {
  if (value instanceof Error) return serializeError(value, 0);
  if (typeof value === "bigint") return value.toString();
  return value;
}

const MAX_CAUSE_DEPTH = 5;
const MAX_STACK_CHARS = 4_000;

/**
 * An error as JSON: name, message, code, stack and its `cause` chain (and an AggregateError's errors), so one
 * log line holds everything an operator needs. Depth-limited: a cause cycle cannot loop.
 */
export function serializeError(error: Error, depth: number): Record<string, unknown> {
  const code = (error as { code?: unknown }).code;
  const out: Record<string, unknown> = { name: error.name, message: error.message };
  if (code !== undefined) out.code = code;
  if (typeof error.stack === "string") out.stack = error.stack.slice(0, MAX_STACK_CHARS);
  if (depth >= MAX_CAUSE_DEPTH) return out;
  const { cause } = error;
  if (cause !== undefined)
    out.cause = cause instanceof Error ? serializeError(cause, depth + 1) : safeValue(cause);
  if (error instanceof AggregateError && Array.isArray(error.errors)) {
    out.errors = error.errors
      .slice(0, 10)
      .map((inner: unknown) =>
        inner instanceof Error ? serializeError(inner, depth + 1) : safeValue(inner),
      );
  }
  return out;
}

/** A non-Error cause, kept only when it is plain data JSON can hold. */
function safeValue(value: unknown): unknown {
  if (value === null || ["string", "number", "boolean"].includes(typeof value)) return value;
  if (typeof value === "bigint") return value.toString();
  try {
    return JSON.parse(
      JSON.stringify(value, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v)),
    ) as unknown;
  } catch {
    return String(value);
  }
}

export const silentLogger: Logger = createLogger("silent");
