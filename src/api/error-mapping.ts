import { create, type DescMessage, type MessageShape, toBinary } from "@bufbuild/protobuf";
import { anyPack } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { BadRequestSchema, ErrorInfoSchema } from "../gen/google/rpc/error_details_pb.ts";
import { StatusSchema } from "../gen/google/rpc/status_pb.ts";
import { AppError, type ErrorCode } from "../lib/errors.ts";
import type { Logger } from "../lib/logger.ts";
import { capText } from "../lib/text.ts";

/** SmartFlow's error domain, as the gateway's client decodes it from `google.rpc.ErrorInfo`. */
export const ERROR_DOMAIN = "smartflow.notification";
export const INTERNAL_MESSAGE = "notification service internal error";

/** SmartFlow's `respond` status codes, by our error reason (reference §2). */
const legacyStatus: Record<string, string> = {
  unauthorized: "40014",
  missing_param: "40004",
  wrong_param_type: "40005",
  param_too_long: "40006",
};

/**
 * SmartFlow's `respond` Info of each status (`backend/shared/respond`): the Go service's gRPC message and
 * ErrorInfo `info`, which the gateway shows its users as `info`. Kept byte for byte; this service's own,
 * clearer sentence travels in a `google.rpc.BadRequest` detail, which the Go gateway ignores.
 */
const legacyInfo: Record<string, string> = {
  "40014": "unauthorized",
  "40004": "missing param",
  "40005": "wrong param type",
  "40006": "param too long",
};

const codeOf: Record<ErrorCode, Code> = {
  invalid_argument: Code.InvalidArgument,
  poison: Code.InvalidArgument,
  not_found: Code.NotFound,
  unauthenticated: Code.Unauthenticated,
  conflict: Code.AlreadyExists,
  failed_precondition: Code.FailedPrecondition,
  unavailable: Code.Unavailable,
  aborted: Code.Aborted,
  broker_unavailable: Code.Unavailable,
  deferred: Code.Unavailable,
  deadline_exceeded: Code.DeadlineExceeded,
  cancelled: Code.Canceled,
  internal: Code.Internal,
};

interface Detail<Desc extends DescMessage = DescMessage> {
  readonly desc: Desc;
  readonly value: MessageShape<Desc>;
}

/** A gRPC status, ready to be written by either protocol stack. */
export interface RpcStatus {
  readonly code: Code;
  readonly message: string;
  readonly details: readonly Detail[];
}

export type ErrorStyle = "legacy" | "v1";

/**
 * Bounds of the error text a caller receives. A message may echo caller input (a 20 KB URL host); it goes
 * out in `grpc-message` and again in `grpc-status-details-bin` (the Status message, and the ErrorInfo or
 * BadRequest text), and trailers past the client's header-list limit (8 KB in grpc-js) make the client reset
 * the stream. Cut here, once, so no handler can blow the trailers: at most 300 code points and 1,024 UTF-8
 * bytes per text, so all of them stay under 7 KB even when percent-encoded.
 */
export const MAX_ERROR_TEXT_CHARS = 300;
export const MAX_ERROR_TEXT_BYTES = 1_024;
const MAX_FIELD_CHARS = 128;
const capMessage = (text: string) => capText(text, MAX_ERROR_TEXT_CHARS, MAX_ERROR_TEXT_BYTES);

/**
 * The one mapping from errors to gRPC statuses.
 * - `legacy` (smartflow.notification.Notification): the code as the original picks it, the original's message
 *   for the status (`unauthorized`, `missing param`, …), and an ErrorInfo detail `{domain:
 *   "smartflow.notification", reason: <status code>, metadata: {info: <that message>}}`, so the Go gateway
 *   decodes and shows errors unchanged; then a BadRequest detail naming the field, in this service's words.
 * - `v1` (the operations service): `InvalidArgument` carries `google.rpc.BadRequest` field violations.
 * Anything that is not an `AppError` is logged with its cause and becomes a bare `Internal`.
 */
export function toRpcStatus(error: unknown, style: ErrorStyle, logger: Logger): RpcStatus {
  if (error instanceof ConnectError)
    return { code: error.code, message: capMessage(error.rawMessage), details: [] };
  // Protocol failures (framing, encoding, size) are the caller's: no error log line per call.
  if (error instanceof RpcFailure)
    return { code: error.code, message: capMessage(error.message), details: [] };
  if (!(error instanceof AppError)) {
    logger.error("unexpected error in an RPC", { error });
    return { code: Code.Internal, message: INTERNAL_MESSAGE, details: [] };
  }
  const code = codeOf[error.code];
  if (code === Code.Internal) logger.error("internal error in an RPC", { error });
  const message = code === Code.Internal ? INTERNAL_MESSAGE : capMessage(error.message);
  if (style === "legacy") return legacyStatusOf(error, code, message);
  if (code === Code.InvalidArgument && error.field) {
    return { code, message, details: [badRequest(error.field, message)] };
  }
  return { code, message, details: [] };
}

/** The gRPC code an error is answered with, as its canonical name (`OK`, `INVALID_ARGUMENT`, …); logs nothing. */
export function grpcCodeName(error: unknown): string {
  let code: Code = Code.Internal;
  if (error === undefined) return "OK";
  if (error instanceof ConnectError || error instanceof RpcFailure) code = error.code;
  else if (error instanceof AppError) code = codeOf[error.code];
  return Code[code].replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase();
}

/**
 * An error the original also answered (its reason names one of SmartFlow's statuses) gets the original's
 * message; one it never produced (a malformed request, say) keeps this service's message.
 */
function legacyStatusOf(error: AppError, code: Code, ownMessage: string): RpcStatus {
  const known = legacyStatus[error.reason ?? ""];
  const reason =
    known ?? (code === Code.Unauthenticated ? "40014" : code === Code.InvalidArgument ? "40004" : "500");
  const message = known ? (legacyInfo[known] ?? ownMessage) : ownMessage;
  const info: Detail = {
    desc: ErrorInfoSchema,
    value: create(ErrorInfoSchema, { domain: ERROR_DOMAIN, reason, metadata: { info: message } }),
  };
  const own = error.field && code !== Code.Internal ? [badRequest(error.field, ownMessage)] : [];
  return { code, message, details: [info, ...own] };
}

/** A field violation; `description` is already capped (it is the message), the field name is capped here. */
function badRequest(field: string, description: string): Detail {
  return {
    desc: BadRequestSchema,
    value: create(BadRequestSchema, {
      fieldViolations: [{ field: capText(field, MAX_FIELD_CHARS, MAX_FIELD_CHARS), description }],
    }),
  };
}

/** A protocol-level failure with a gRPC code of its own (malformed framing, unsupported encoding, …). */
export class RpcFailure extends Error {
  override readonly name = "RpcFailure";
  constructor(
    readonly code: Code,
    message: string,
  ) {
    super(message);
  }
}

export function toConnectError(status: RpcStatus): ConnectError {
  return new ConnectError(status.message, status.code, undefined, status.details as Detail[]);
}

/** `grpc-status-details-bin`: a serialized `google.rpc.Status` carrying the details. */
export function statusDetailsBin(status: RpcStatus): Buffer | undefined {
  if (status.details.length === 0) return undefined;
  const packed = create(StatusSchema, {
    code: status.code,
    message: status.message,
    details: status.details.map((detail) => anyPack(detail.desc, detail.value)),
  });
  return Buffer.from(toBinary(StatusSchema, packed));
}

/** Turns an aborted signal's reason into the matching error. */
export function abortError(signal: AbortSignal): AppError {
  const reason: unknown = signal.reason;
  const timedOut = reason instanceof Error && reason.name === "TimeoutError";
  return timedOut
    ? new AppError("deadline_exceeded", "the deadline was exceeded", { cause: reason })
    : new AppError("cancelled", "the call was cancelled", { cause: reason });
}

/** Throws the call's deadline or cancellation error when its signal has fired (checked before each step). */
export function throwIfAborted(signal: AbortSignal): void {
  if (signal.aborted) throw abortError(signal);
}

/**
 * Races a call against its signal, so the caller gets `DeadlineExceeded` or `Canceled` as soon as the
 * deadline passes, whatever the handler is waiting on (a database query cannot be interrupted; it finishes
 * unobserved). The transports apply this once per call; handlers only check the signal between steps and
 * pass it to what can be cancelled (HTTP requests).
 */
export async function raceSignal<T>(signal: AbortSignal, step: () => Promise<T>): Promise<T> {
  if (signal.aborted) throw abortError(signal);
  let onAbort: () => void = () => undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(abortError(signal));
    signal.addEventListener("abort", onAbort, { once: true });
  });
  try {
    return await Promise.race([step(), aborted]);
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
}
