import type { ParsedWebhook, WebhookKind, WebhookPolicy } from "../../notifications/ports/webhook-policy.ts";

const FLOW_PREFIX = "/flow/api/trigger-webhook/";
const BOT_PREFIX = "/open-apis/bot/v2/hook/";
const KEY = /^[A-Za-z0-9_-]{8,128}$/;

/** The domain's `WebhookPolicy` with Feishu's rules, for the hosts allowed (`FEISHU_ALLOWED_HOSTS`). */
export function createFeishuWebhookPolicy(allowedHosts: readonly string[]): WebhookPolicy {
  return {
    parse: (raw) => parseWebhookUrl(raw, allowedHosts),
    parseStored: (raw) => parseStoredWebhookUrl(raw, allowedHosts),
    mask: maskWebhookUrl,
  };
}

/**
 * Checks a webhook URL a user saves, and tells which kind it is. Rules (weakness 20 fixed): https only; no
 * user info; the host (with its port, unless 443) on the allow-list; the path a Flow trigger
 * (`/flow/api/trigger-webhook/<key>`) or a group bot (`/open-apis/bot/v2/hook/<token>`) with a key of 8 to
 * 128 plain characters and nothing after it; no query or fragment.
 */
export function parseWebhookUrl(raw: string, allowedHosts: readonly string[]): ParsedWebhook {
  const checked = check(raw, allowedHosts, "strict");
  if (!checked.ok) return checked;
  if (!KEY.test(checked.key)) return fail("webhook_url has no valid key after its path prefix");
  return { ok: true, kind: checked.kind, url: checked.url.toString() };
}

/**
 * Checks a URL already stored, at each send. SmartFlow's Go service saved any https `feishu.cn` URL whose
 * path started with the Flow prefix (a trailing slash, a query, a short or empty key) and posted to it as
 * stored, so such rows keep working: only what makes a request unsafe or impossible is refused (not https,
 * a host off the allow-list, user info, a path that is not a Flow trigger or a bot, a malformed %-escape,
 * which Go's URL parser refuses too). The URL returned is what to POST to: the stored one without its
 * fragment.
 */
export function parseStoredWebhookUrl(raw: string, allowedHosts: readonly string[]): ParsedWebhook {
  const checked = check(raw, allowedHosts, "lenient");
  if (!checked.ok) return checked;
  if (/%(?![0-9A-Fa-f]{2})/.test(checked.url.pathname)) {
    return fail("webhook_url has a malformed %-escape in its path");
  }
  checked.url.hash = "";
  return { ok: true, kind: checked.kind, url: checked.url.toString() };
}

const fail = (reason: string) => ({ ok: false, reason }) as const;

type Checked =
  | { readonly ok: true; readonly url: URL; readonly kind: WebhookKind; readonly key: string }
  | { readonly ok: false; readonly reason: string };

function check(raw: string, allowedHosts: readonly string[], mode: "strict" | "lenient"): Checked {
  let url: URL;
  try {
    url = new URL(raw.trim());
  } catch {
    return fail("webhook_url is not a valid URL");
  }
  if (url.protocol !== "https:") return fail("webhook_url must use https");
  if (url.username || url.password) return fail("webhook_url must not contain credentials");
  if (mode === "strict" && (url.search || url.hash))
    return fail("webhook_url must not have a query or fragment");
  const host = url.host.toLowerCase();
  if (!allowedHosts.includes(host)) return fail(`webhook host ${host} is not allowed`);
  // `pathname` is normalised (dot segments resolved), so `…/trigger-webhook/../../x` is not under the prefix.
  const prefix = [FLOW_PREFIX, BOT_PREFIX].find((candidate) => url.pathname.startsWith(candidate));
  if (!prefix) {
    return fail(`webhook_url must be a Feishu Flow trigger (${FLOW_PREFIX}…) or bot (${BOT_PREFIX}…)`);
  }
  const kind: WebhookKind = prefix === FLOW_PREFIX ? "flow_trigger" : "group_bot";
  return { ok: true, url, kind, key: url.pathname.slice(prefix.length) };
}

/**
 * The URL as logs and API responses may show it, whatever its shape, never throwing: scheme and host, the
 * Flow or bot prefix when the path has one, then everything after the prefix (the key, and whatever follows
 * it) masked as one: its first and last 4 characters around "...", or "****" when it has 8 or fewer.
 * Trailing slashes, user info, query and fragment are dropped; a path without a known prefix is masked whole;
 * text that is not a URL is masked whole. (SmartFlow's `MaskWebhookURL` masked the last segment only, which
 * shows a key followed by anything; and this service's earlier mask showed the whole key before a slash.)
 * No cache: each mask is a URL parse, and a cache of URLs would be a cache of bots' secrets.
 */
export function maskWebhookUrl(raw: string): string {
  const text = raw.trim();
  if (!text) return "";
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return maskMiddle(text);
  }
  if (!url.host) return maskMiddle(text);
  const path = `${url.pathname.replace(/\/+$/, "")}/`;
  const prefix = [FLOW_PREFIX, BOT_PREFIX].find((candidate) => path.startsWith(candidate)) ?? "/";
  const rest = path.slice(prefix.length, -1);
  return `${url.protocol}//${url.host}${prefix}${maskMiddle(decoded(rest))}`;
}

function decoded(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** SmartFlow's `maskMiddle`: the first and last 4 characters around "...", "****" up to 8, "" for "". */
export function maskMiddle(value: string): string {
  const chars = Array.from(value);
  if (chars.length === 0) return "";
  if (chars.length <= 8) return "****";
  return `${chars.slice(0, 4).join("")}...${chars.slice(-4).join("")}`;
}
