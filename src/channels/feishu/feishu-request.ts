import type { Clock } from "../../lib/clock.ts";
import type { HttpsClient, HttpsResponse } from "./https-client.ts";

export const MESSAGE_TITLE = "SmartFlow 日程调整建议";
export const ACTION_TEXT = "查看并确认调整";

/** What both Feishu protocols need to make a request. */
export interface FeishuContext {
  readonly client: HttpsClient;
  readonly clock: Clock;
  readonly frontendBaseUrl: string;
  /** Must stay below the sending lease and the RPC deadline (5 s < 6 s in SmartFlow). */
  readonly timeoutMs: number;
}

/** The link in a message: a relative target (`/assistant/…`) under the frontend's base URL. */
export function actionUrl(context: FeishuContext, targetUrl: string): string {
  return /^https?:\/\//i.test(targetUrl)
    ? targetUrl
    : `${context.frontendBaseUrl.replace(/\/+$/, "")}/${targetUrl.replace(/^\/+/, "")}`;
}

export function postJson(
  context: FeishuContext,
  url: string,
  body: string,
  headers: Record<string, string>,
  signal?: AbortSignal,
): Promise<HttpsResponse> {
  return context.client.postJson(
    url,
    body,
    { "content-type": "application/json; charset=utf-8", ...headers },
    context.timeoutMs,
    signal,
  );
}
