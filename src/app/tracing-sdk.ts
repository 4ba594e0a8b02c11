import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import {
  defaultResource,
  detectResources,
  envDetector,
  resourceFromAttributes,
} from "@opentelemetry/resources";
import {
  BatchSpanProcessor,
  ConsoleSpanExporter,
  SimpleSpanProcessor,
  type SpanExporter,
  type SpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import { NodeTracerProvider } from "@opentelemetry/sdk-trace-node";
import type { Config } from "../config/load-config.ts";
import type { Logger } from "../lib/logger.ts";
import { markTracingStarted } from "../lib/trace-context.ts";

/**
 * The one file that starts the OpenTelemetry SDK; everything else uses only `@opentelemetry/api` (through
 * src/lib/trace-context.ts). Configured only by the standard OTEL_* keys: with none of them set, or
 * OTEL_SDK_DISABLED=true, or OTEL_TRACES_EXPORTER=none, no SDK is started and the API stays the no-op one
 * (zero cost: no span is made, no context is tracked). Started, it registers a Node tracer provider (async-context propagation, the
 * W3C propagator), with a batching OTLP/HTTP exporter (which reads its endpoint, headers and timeout from
 * OTEL_EXPORTER_OTLP_*) or the console exporter.
 */
export type TracingPlan =
  | { readonly kind: "off"; readonly reason: string }
  | { readonly kind: "otlp" | "console"; readonly serviceName: string };

export const DEFAULT_SERVICE_NAME = "smartflow-notification";

/** The adapter's decision, from the parsed OTEL_* keys alone (no I/O). */
export function tracingPlan(settings: Config["tracing"]): TracingPlan {
  const { sdkDisabled, exporter, endpoint, tracesEndpoint, serviceName } = settings;
  if (sdkDisabled) return { kind: "off", reason: "OTEL_SDK_DISABLED=true" };
  const exporters = exporter
    .split(",")
    .map((name) => name.trim().toLowerCase())
    .filter(Boolean);
  if (exporters.includes("none")) return { kind: "off", reason: "OTEL_TRACES_EXPORTER=none" };
  if (exporters.length === 0 && !endpoint && !tracesEndpoint && !serviceName) {
    return { kind: "off", reason: "no OTEL_* key is set" };
  }
  const name = serviceName || DEFAULT_SERVICE_NAME;
  if (exporters.length === 0 || exporters.includes("otlp")) return { kind: "otlp", serviceName: name };
  if (exporters.includes("console")) return { kind: "console", serviceName: name };
  return { kind: "off", reason: `OTEL_TRACES_EXPORTER=${exporter}: no exporter of that name here` };
}

export interface Tracing {
  readonly started: boolean;
  /** Exports what is buffered and stops the SDK (bounded by the exporter's own timeout). */
  shutdown(): Promise<void>;
}

const notStarted: Tracing = { started: false, shutdown: async () => undefined };

export function startTracing(plan: TracingPlan, logger: Logger): Tracing {
  if (plan.kind === "off") {
    logger.debug("tracing is off", { reason: plan.reason });
    return notStarted;
  }
  const exporter = plan.kind === "otlp" ? new OTLPTraceExporter() : new ConsoleSpanExporter();
  const tracing = register(plan.serviceName, new BatchSpanProcessor(exporter));
  logger.info("tracing started", { exporter: plan.kind, service: plan.serviceName });
  return tracing;
}

/**
 * The test hook: starts the SDK with `exporter` (e.g. the SDK's `InMemorySpanExporter`), each span exported
 * as it ends. Like `startTracing`, once per process: the API's globals take the first provider registered.
 */
export function startTracingWithExporter(
  exporter: SpanExporter,
  serviceName = DEFAULT_SERVICE_NAME,
): Tracing {
  return register(serviceName, new SimpleSpanProcessor(exporter));
}

function register(serviceName: string, processor: SpanProcessor): Tracing {
  const resource = defaultResource()
    .merge(resourceFromAttributes({ "service.name": serviceName }))
    .merge(detectResources({ detectors: [envDetector] }));
  const provider = new NodeTracerProvider({ resource, spanProcessors: [processor] });
  provider.register();
  markTracingStarted();
  return {
    started: true,
    shutdown: () => provider.shutdown(),
  };
}
