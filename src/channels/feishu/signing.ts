import { createHmac } from "node:crypto";

/**
 * Feishu custom-bot request signature: HMAC-SHA256 keyed with `timestamp + "\n" + secret` over an empty message,
 * Base64-encoded. `timestamp` is Unix seconds and must be within an hour of Feishu's clock, so a request is
 * signed anew at every attempt, never stored signed.
 */
export function signBotRequest(timestampSeconds: number, secret: string): string {
  return createHmac("sha256", `${timestampSeconds}\n${secret}`).update("").digest("base64");
}
