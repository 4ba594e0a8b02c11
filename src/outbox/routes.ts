/**
 * Event type → service → {table, topic, consumer group}: static configuration, built once at startup and read
 * by the relay, the consumer, the handlers and the migrations alike (fixes weaknesses 12 and 13: there is no
 * process-global registry whose contents depend on registration order).
 */
export interface ServiceRoute {
  readonly service: string;
  readonly table: string;
  readonly topic: string;
  readonly groupId: string;
}

export type RouteOverrides = Readonly<Record<string, Partial<Omit<ServiceRoute, "service">>>>;

export interface RouteTable {
  /** The route of a service: the built-in catalog with configured overrides applied. */
  service(name: string): ServiceRoute;
  /** The route of an event type, or undefined when the event type belongs to no known service. */
  event(eventType: string): ServiceRoute | undefined;
}

/** SmartFlow's services (reference §4.2); any other name gets a route by the same convention. */
export const knownServices = [
  "agent",
  "task",
  "memory",
  "active-scheduler",
  "notification",
  "taskclass-forum",
  "token-store",
  "llm",
] as const;

export function defaultRoute(service: string): ServiceRoute {
  const name = service.trim() || "agent";
  return {
    service: name,
    table: `${name.replaceAll("-", "_")}_outbox_messages`,
    topic: `smartflow.${name}.outbox`,
    groupId: `smartflow-${name}-outbox-consumer`,
  };
}

/** Which service owns each event type this process handles or enqueues (e.g. `notification.feishu.requested`). */
export type EventOwners = Readonly<Record<string, string>>;

export function createRouteTable(overrides: RouteOverrides = {}, eventOwners: EventOwners = {}): RouteTable {
  const cache = new Map<string, ServiceRoute>();
  const service = (name: string): ServiceRoute => {
    const key = name.trim() || "agent";
    let route = cache.get(key);
    if (!route) {
      const base = defaultRoute(key);
      const override = overrides[key] ?? {};
      route = Object.freeze({
        service: key,
        table: override.table ?? base.table,
        topic: override.topic ?? base.topic,
        groupId: override.groupId ?? base.groupId,
      });
      cache.set(key, route);
    }
    return route;
  };
  return {
    service,
    event(eventType) {
      const owner = eventOwners[eventType.trim()];
      return owner === undefined ? undefined : service(owner);
    },
  };
}

const identifier = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

/** Table names end up in SQL as identifiers; only plain names are allowed. */
export function isValidTableName(name: string): boolean {
  return identifier.test(name);
}
