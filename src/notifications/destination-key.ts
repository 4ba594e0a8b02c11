import { createHash } from "node:crypto";

/**
 * The key a destination's send budget is kept under: a SHA-256 of its webhook URL, so that neither a table
 * nor a log ever holds the URL (its token is the credential). Users who paste the same bot share one key:
 * the query, fragment and trailing slashes are left out, and the host is lower-cased, as Feishu's routing
 * ignores them.
 */
export function destinationKey(webhookUrl: string): string {
  return createHash("sha256").update(canonical(webhookUrl)).digest("hex");
}

function canonical(webhookUrl: string): string {
  const trimmed = webhookUrl.trim();
  try {
    const url = new URL(trimmed);
    return `${url.protocol}//${url.host.toLowerCase()}${url.pathname.replace(/\/+$/, "")}`;
  } catch {
    return trimmed;
  }
}
