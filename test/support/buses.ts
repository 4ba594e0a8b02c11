import { silentLogger } from "../../src/lib/logger.ts";
import type { MessageBus } from "../../src/messaging/bus.ts";
import { createKafkaBus } from "../../src/messaging/kafka-bus.ts";
import { createMemoryBus } from "../../src/messaging/memory-bus.ts";
import type { Backend } from "./harness.ts";
import { testBrokers, uniqueName } from "./kafka.ts";

/** The bus an app on `backend` would create, built by the test so it can be wrapped or tuned. */
export function busFor(backend: Backend, options: { readonly sessionTimeoutMs?: number } = {}): MessageBus {
  return backend === "mysql+kafka"
    ? createKafkaBus({
        brokers: testBrokers(),
        clientId: uniqueName("test-bus"),
        logger: silentLogger,
        partitionsConcurrently: 3,
        maxBatch: 500,
        connectTimeoutMs: 3_000,
        ...options,
      })
    : createMemoryBus({ logger: silentLogger });
}

/** A bus whose first `count` publishes never settle (a broker that accepts the connection and hangs). */
export function withHangingPublishes(bus: MessageBus, count: number): MessageBus & { hung(): number } {
  let hung = 0;
  return {
    kind: bus.kind,
    ensureTopic: (topic, partitions) => bus.ensureTopic(topic, partitions),
    publish(topic, messages) {
      if (hung < count) {
        hung++;
        return new Promise<void>(() => undefined);
      }
      return bus.publish(topic, messages);
    },
    subscribe: (subscription, signal) => bus.subscribe(subscription, signal),
    close: () => bus.close(),
    hung: () => hung,
  };
}

/**
 * A bus whose consumer fails for good once subscribed (as a subscription the broker refuses for ever would):
 * the outbox consumer's `run()` rejects.
 */
export function withFailingSubscribe(bus: MessageBus): MessageBus {
  return {
    kind: bus.kind,
    ensureTopic: (topic, partitions) => bus.ensureTopic(topic, partitions),
    publish: (topic, messages) => bus.publish(topic, messages),
    subscribe: async (subscription) => {
      throw new Error(`subscription to ${subscription.topic} refused for good`);
    },
    close: () => bus.close(),
  };
}
