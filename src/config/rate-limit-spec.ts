import { setting } from "./setting.ts";
import { integer, oneOf } from "./value-parsers.ts";

/**
 * Where Feishu's per-destination limits (DELIVERY_RATE_PER_SECOND, DELIVERY_RATE_PER_MINUTE) are kept
 * (`config.delivery.rateLimit`), a group of the spec table (config-spec.ts), used by
 * src/app/delivery-wiring.ts.
 */
export const rateLimitSpec = {
  scope: setting(
    "DELIVERY_RATE_LIMIT_SCOPE",
    "auto",
    oneOf(["auto", "database", "process"]),
    "`database`: the limits hold across every instance on the database (a row per webhook destination, `notification_send_budgets`); `process`: each instance keeps its own, so N instances may send N times the limit; `auto`: `database` on MySQL, `process` on SQLite",
  ),
  marginMs: setting(
    "DELIVERY_RATE_LIMIT_MARGIN_MS",
    "1000",
    integer(0, 60_000),
    "added to each limit's window: a request reaches Feishu some time after its slot is taken and that delay varies, so our windows are longer than Feishu's by its spread (and the instances' clock skew): 5 per 2 s and 100 per 61 s by default, which costs under 2 % of a bot's sustained rate (the minute's limit binds)",
  ),
};
