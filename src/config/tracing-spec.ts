import { type Parse, setting } from "./setting.ts";
import { text } from "./value-parsers.ts";

/** The OpenTelemetry spec's rule: only "true" (any case) disables the SDK; any other value leaves it on. */
const otelBoolean: Parse<boolean> = (raw) => raw.toLowerCase() === "true";

/**
 * Tracing (`config.tracing`), a group of the spec table (config-spec.ts). These are OpenTelemetry's standard
 * names: read here only to decide whether the SDK starts (src/app/tracing-sdk.ts: none set, or disabled, or
 * exporter `none`, means no SDK at all); the SDK and its OTLP/HTTP exporter read them, and the other
 * `OTEL_*` keys (headers, timeouts, sampler, batch sizes, `OTEL_RESOURCE_ATTRIBUTES`), themselves.
 */
export const tracingSpec = {
  sdkDisabled: setting(
    "OTEL_SDK_DISABLED",
    "false",
    otelBoolean,
    "true: no tracing SDK, whatever else is set (traceparents are still carried from producer to consumer)",
  ),
  exporter: setting(
    "OTEL_TRACES_EXPORTER",
    "",
    text,
    "otlp (OTLP/HTTP, JSON), console, or none; set, or with an endpoint set, the SDK starts (default otlp)",
    "(empty)",
  ),
  endpoint: setting(
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "",
    text,
    "the OTLP/HTTP collector's base URL (`/v1/traces` is appended), e.g. http://127.0.0.1:4318",
    "(empty)",
  ),
  tracesEndpoint: setting(
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "",
    text,
    "the full URL traces are POSTed to (wins over OTEL_EXPORTER_OTLP_ENDPOINT)",
    "(empty)",
  ),
  serviceName: setting(
    "OTEL_SERVICE_NAME",
    "",
    text,
    "the traces' `service.name`; set alone, it starts the SDK with the default OTLP endpoint (default name smartflow-notification)",
    "(empty)",
  ),
};
