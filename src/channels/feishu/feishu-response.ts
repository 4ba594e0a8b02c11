import type {
  ProviderErrorCode,
  SendOutcome,
  SendResult,
} from "../../notifications/ports/delivery-provider.ts";
import { TransportError } from "./https-client.ts";

/** Builds a send's result from its outcome: a success gets a provider message id, a failure its code and text. */
export type ResultOf = (
  outcome: SendOutcome,
  errorCode?: ProviderErrorCode,
  errorMessage?: string,
) => SendResult;

export function resultBuilder(
  requestPayload: unknown,
  responsePayload: unknown,
  providerMessageId: () => string,
): ResultOf {
  return (outcome, errorCode, errorMessage) =>
    outcome === "success"
      ? { outcome, providerMessageId: providerMessageId(), requestPayload, responsePayload }
      : {
          outcome,
          ...(errorCode ? { errorCode } : {}),
          ...(errorMessage ? { errorMessage } : {}),
          requestPayload,
          responsePayload,
        };
}

/** SmartFlow's classification of a Flow trigger's HTTP status (and of a bot's, when its body has no code). */
export function classifyStatus(status: number, result: ResultOf): SendResult {
  if (status === 429)
    return result("temporary_fail", "provider_rate_limited", "飞书 webhook 限流 (HTTP 429)");
  if (status >= 500) return result("temporary_fail", "provider_5xx", `飞书 webhook HTTP ${status}`);
  if (status === 401 || status === 403) {
    return result("permanent_fail", "provider_auth_failed", `飞书 webhook HTTP ${status}`);
  }
  return result("permanent_fail", "payload_invalid", `飞书 webhook HTTP ${status}`);
}

/** No answer: a timeout or a network error, both retried. */
export function transportFailure(error: unknown, requestPayload: unknown): SendResult {
  const timedOut = error instanceof TransportError && error.timedOut;
  return {
    outcome: "temporary_fail",
    errorCode: timedOut ? "provider_timeout" : "network_error",
    errorMessage: error instanceof Error ? error.message : String(error),
    requestPayload,
    responsePayload: null,
  };
}

/** What the response's status and body are kept as (`provider_response_json`). */
export function responsePayload(response: { readonly status: number; readonly body: string }) {
  return { status_code: response.status, ...(response.body ? { body: response.body } : {}) };
}

function parseBody(body: string): Record<string, unknown> | undefined {
  if (!body.trim()) return undefined;
  try {
    const value: unknown = JSON.parse(body);
    return typeof value === "object" && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

/** The JSON body's `code`, when it has a numeric one. */
export function bodyCode(body: string): number | undefined {
  const code = parseBody(body)?.code;
  return typeof code === "number" ? code : undefined;
}

/** The JSON body's `msg`, when it has a non-empty one. */
export function bodyMessage(body: string): string | undefined {
  const msg = parseBody(body)?.msg;
  return typeof msg === "string" && msg ? msg : undefined;
}

/** RFC 3339 with the local offset, as Go's `time.Format(time.RFC3339)` prints it. */
export function formatRfc3339(date: Date): string {
  const offset = -date.getTimezoneOffset();
  const sign = offset >= 0 ? "+" : "-";
  const abs = Math.abs(offset);
  const local = new Date(date.getTime() + offset * 60_000).toISOString().slice(0, 19);
  return offset === 0 ? `${local}Z` : `${local}${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
}

function pad(n: number): string {
  return String(n).padStart(2, "0");
}
