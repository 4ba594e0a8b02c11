import { envValue, type Setting } from "./setting.ts";
import { address } from "./value-parsers.ts";

/** Its empty value is a value (the listener off), so load-config.ts keeps it when it drops blank variables. */
export const METRICS_ADDR = "METRICS_ADDR";
const METRICS_DEFAULT = "0.0.0.0:9464";

/**
 * The operators' listener (`config.metrics`), a group of the spec table (config-spec.ts): plain HTTP with
 * `/metrics` (Prometheus text), `/livez` and `/readyz`, apart from the API's port. Unlike other keys, an
 * empty value is not "unset": `METRICS_ADDR=` turns the listener off.
 */
export const metricsSpec = {
  address: {
    key: METRICS_ADDR,
    shownDefault: METRICS_DEFAULT,
    doc: "plain HTTP listener for `/metrics` (Prometheus), `/livez` and `/readyz`; set it empty to turn it off; port 0 picks a free one",
    read(env) {
      if (env[METRICS_ADDR] !== undefined && env[METRICS_ADDR].trim() === "") return undefined;
      return address(envValue(env, METRICS_ADDR) ?? METRICS_DEFAULT, METRICS_ADDR);
    },
  } satisfies Setting<{ readonly host: string; readonly port: number } | undefined>,
};
