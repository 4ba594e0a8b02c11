import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { silentLogger } from "../../src/lib/logger.ts";
import type { IncomingMessage, MessageBus } from "../../src/messaging/bus.ts";
import { createKafkaBus } from "../../src/messaging/kafka-bus.ts";
import { createMemoryBus } from "../../src/messaging/memory-bus.ts";
import { testBrokers, uniqueName } from "../support/kafka.ts";

/** The guarantees the outbox relies on, proven for each bus (style.md habit 12). */
const buses: { name: string; create: () => MessageBus }[] = [
  {
    name: "kafka",
    create: () =>
      createKafkaBus({
        brokers: testBrokers(),
        clientId: uniqueName("contract"),
        logger: silentLogger,
        partitionsConcurrently: 3,
        maxBatch: 100,
        connectTimeoutMs: 3_000,
      }),
  },
  { name: "memory", create: () => createMemoryBus({ logger: silentLogger, redeliveryDelayMs: 20 }) },
];

const text = (m: IncomingMessage) => m.value?.toString("utf8") ?? "";

/** Subscribes until `done(received)` holds, then stops; returns everything received. */
async function consumeUntil(
  bus: MessageBus,
  topic: string,
  groupId: string,
  handle: (messages: readonly IncomingMessage[], stop: () => void) => Promise<boolean>,
  timeoutMs = 30_000,
) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  try {
    await bus.subscribe(
      { topic, groupId, handleMessages: (messages) => handle(messages, () => controller.abort()) },
      controller.signal,
    );
  } finally {
    clearTimeout(timer);
  }
}

for (const { name, create } of buses) {
  describe(`bus contract: ${name}`, () => {
    test("delivers every message, in order per key", async () => {
      const bus = create();
      const topic = uniqueName("contract.order");
      try {
        await bus.ensureTopic(topic, 3);
        const sent = Array.from({ length: 60 }, (_, i) => ({ key: `user-${i % 4}`, value: `${i % 4}:${i}` }));
        await bus.publish(topic, sent.slice(0, 30));
        await bus.publish(topic, sent.slice(30));
        const received: IncomingMessage[] = [];
        await consumeUntil(bus, topic, uniqueName("g"), async (messages, stop) => {
          received.push(...messages);
          if (received.length >= sent.length) stop();
          return true;
        });
        assert.equal(received.length, sent.length);
        for (let key = 0; key < 4; key++) {
          const ofKey = received.filter((m) => m.key === `user-${key}`).map(text);
          assert.deepEqual(
            ofKey,
            sent.filter((m) => m.key === `user-${key}`).map((m) => m.value),
            `order of user-${key}`,
          );
        }
      } finally {
        await bus.close();
      }
    });

    test("headers reach the consumer as text; a message without any has none", async () => {
      const bus = create();
      const topic = uniqueName("contract.headers");
      try {
        await bus.ensureTopic(topic, 1);
        const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        await bus.publish(topic, [
          { key: "k", value: "traced", headers: { traceparent, tracestate: "vendor=x" } },
          { key: "k", value: "plain" },
        ]);
        const received: IncomingMessage[] = [];
        await consumeUntil(bus, topic, uniqueName("g"), async (messages, stop) => {
          received.push(...messages);
          if (received.length >= 2) stop();
          return true;
        });
        assert.deepEqual(
          received.map((m) => [text(m), m.headers]),
          [
            ["traced", { traceparent, tracestate: "vendor=x" }],
            ["plain", {}],
          ],
        );
      } finally {
        await bus.close();
      }
    });

    test("a batch whose handler throws is delivered again", async () => {
      const bus = create();
      const topic = uniqueName("contract.redeliver");
      try {
        await bus.ensureTopic(topic, 1);
        await bus.publish(topic, [{ key: "k", value: "only" }]);
        // Nothing is asserted inside the handler: a failed assertion there would only be one more redelivery.
        const deliveries: string[] = [];
        await consumeUntil(bus, topic, uniqueName("g"), async (messages, stop) => {
          deliveries.push(messages.map(text).join());
          if (deliveries.length === 1) throw new Error("handler crashed");
          stop();
          return true;
        });
        assert.deepEqual(deliveries, ["only", "only"]);
      } finally {
        await bus.close();
      }
    });

    test("offsets move only for handled batches: the group's next subscriber gets the rest", async () => {
      const bus = create();
      const topic = uniqueName("contract.commit");
      const groupId = uniqueName("g");
      try {
        await bus.ensureTopic(topic, 1);
        await bus.publish(
          topic,
          ["a1", "a2", "a3"].map((value) => ({ key: "k", value })),
        );
        const acknowledged: string[] = [];
        await consumeUntil(bus, topic, groupId, async (messages, stop) => {
          if (messages.some((m) => text(m).startsWith("b"))) {
            stop(); // shutting down mid-batch: nothing of this batch is acknowledged
            return false;
          }
          acknowledged.push(...messages.map(text));
          if (acknowledged.length === 3)
            await bus.publish(
              topic,
              ["b1", "b2"].map((value) => ({ key: "k", value })),
            );
          return true;
        });
        assert.deepEqual(acknowledged, ["a1", "a2", "a3"]);
        const redelivered: string[] = [];
        await consumeUntil(bus, topic, groupId, async (messages, stop) => {
          redelivered.push(...messages.map(text));
          if (redelivered.length >= 2) stop();
          return true;
        });
        assert.deepEqual(redelivered, ["b1", "b2"]);
      } finally {
        await bus.close();
      }
    });
  });
}
