import type { ParsedWebhook, WebhookKind, WebhookPolicy } from "../../notifications/ports/webhook-policy.ts";

const FLOW_PREFIX = "/flow/api/trigger-webhook/";
const BOT_PREFIX = "/open-apis/bot/v2/hook/";
const KEY = /^[A-Za-z0-9_-]{8,128}$/;

/** The domain's `WebhookPolicy` with Feishu's rules, for the hosts allowed (`FEISHU_ALLOWED_HOSTS`). */
export function createFeishuWebhookPolicy(allowedHosts: readonly string[]): WebhookPolicy {
  return { parse: (raw) => parseWebhookUrl(raw, allowedHosts), mask: maskWebhookUrl };
}

/**
 * Checks a webhook URL and tells which kind it is. Rules (weakness 20 fixed): https only; no user info; the host
 * (with its port, unless 443) on the allow-list; the path a Flow trigger (`/flow/api/trigger-webhook/<key>`) or
 * a group bot (`/open-apis/bot/v2/hook/<token>`) with a non-empty key of plain characters; no query or
 * fragment.
 */
export function parseWebhookUrl(raw: string, allowedHosts: readonly string[]): ParsedWebhook {
  const text = raw.trim();
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return { ok: false, reason: "webhook_url is not a valid URL" };
  }
  if (url.protocol !== "https:") return { ok: false, reason: "webhook_url must use https" };
  if (url.username || url.password) return { ok: false, reason: "webhook_url must not contain credentials" };
  if (url.search || url.hash) return { ok: false, reason: "webhook_url must not have a query or fragment" };
  const host = url.host.toLowerCase();
  if (!allowedHosts.includes(host)) return { ok: false, reason: `webhook host ${host} is not allowed` };
  const path = url.pathname;
  const kind: WebhookKind | undefined = path.startsWith(FLOW_PREFIX)
    ? "flow_trigger"
    : path.startsWith(BOT_PREFIX)
      ? "group_bot"
      : undefined;
  if (!kind) {
    return {
      ok: false,
      reason: `webhook_url must be a Feishu Flow trigger (${FLOW_PREFIX}…) or bot (${BOT_PREFIX}…)`,
    };
  }
  const key = path.slice((kind === "flow_trigger" ? FLOW_PREFIX : BOT_PREFIX).length);
  if (!KEY.test(key)) return { ok: false, reason: "webhook_url has no valid key after its path prefix" };
  return { ok: true, kind, url: url.toString() };
}

/**
 * SmartFlow's `MaskWebhookURL`: the last path segment becomes its first and last 4 characters around "...",
 * or "****" when it has 8 or fewer; query and fragment are dropped; anything unparsable is masked whole.
 */
export function maskWebhookUrl(raw: string): string {
  let masked = maskCache.get(raw);
  if (masked === undefined) {
    masked = mask(raw);
    // Channel reads repeat the same URLs (GetFeishuWebhook is the gateway's hot path): keep recent masks.
    if (maskCache.size >= 10_000) maskCache.clear();
    maskCache.set(raw, masked);
  }
  return masked;
}

const maskCache = new Map<string, string>();

function mask(raw: string): string {
  const text = raw.trim();
  if (!text) return "";
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return maskMiddle(text);
  }
  if (!url.host) return maskMiddle(text);
  const segments = url.pathname.split("/");
  const last = segments.length - 1;
  segments[last] = maskMiddle(decodeURIComponent(segments[last] ?? ""));
  return `${url.protocol}//${url.host}${segments.join("/")}`;
}

export function maskMiddle(value: string): string {
  const chars = Array.from(value);
  if (chars.length <= 8) return "****";
  return `${chars.slice(0, 4).join("")}...${chars.slice(-4).join("")}`;
}
