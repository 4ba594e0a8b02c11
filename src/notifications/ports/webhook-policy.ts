/**
 * Which webhook URLs a channel may hold, what kind each is, and how one is shown. The domain decides when
 * to ask; the rules are the provider's (src/channels/feishu/webhook-url.ts).
 */
export type WebhookKind = "flow_trigger" | "group_bot";

export type ParsedWebhook =
  | { readonly ok: true; readonly kind: WebhookKind; readonly url: string }
  | { readonly ok: false; readonly reason: string };

export interface WebhookPolicy {
  /** Checks a URL a user saves (strict) and tells its kind; `url` is the normalised form to store. */
  parse(raw: string): ParsedWebhook;
  /**
   * Checks a stored URL at send time (lenient: rows SmartFlow's Go service saved keep working where they are
   * safe) and tells its kind; `url` is where to send.
   */
  parseStored(raw: string): ParsedWebhook;
  /** The URL as logs and API responses may show it (its key masked); never throws. */
  mask(raw: string): string;
}
