import assert from "node:assert/strict";
import { test } from "node:test";
import kafkajs from "kafkajs";
import { silentLogger } from "../../src/lib/logger.ts";
import { createKafkaBus } from "../../src/messaging/kafka-bus.ts";
import { testBrokers, uniqueName } from "../support/kafka.ts";

const { Kafka, logLevel } = kafkajs;

/** The broker's smallest allowed session timeout (group.min.session.timeout.ms). */
const SESSION_TIMEOUT_MS = 6_000;

test("a handler that blocks past the session timeout keeps its partition: no rebalance, no second delivery", async () => {
  const bus = createKafkaBus({
    brokers: testBrokers(),
    clientId: uniqueName("heartbeat"),
    logger: silentLogger,
    partitionsConcurrently: 1,
    maxBatch: 10,
    connectTimeoutMs: 3_000,
    sessionTimeoutMs: SESSION_TIMEOUT_MS,
  });
  const admin = new Kafka({
    clientId: uniqueName("heartbeat-admin"),
    brokers: testBrokers(),
    logLevel: logLevel.NOTHING,
  }).admin();
  const topic = uniqueName("heartbeat.topic");
  const groupId = uniqueName("heartbeat-group");
  const controller = new AbortController();
  const deadline = setTimeout(() => controller.abort(), 60_000);
  const seen: string[] = [];
  const groupDuringBlock: { state: string; members: string[] }[] = [];
  const describe = async () => {
    const { groups } = await admin.describeGroups([groupId]);
    const group = groups[0];
    return { state: group?.state ?? "none", members: (group?.members ?? []).map((m) => m.memberId) };
  };
  try {
    await admin.connect();
    await bus.ensureTopic(topic, 1);
    await bus.publish(topic, [{ key: "k", value: "blocking" }]);
    await bus.subscribe(
      {
        topic,
        groupId,
        async handleMessages(messages) {
          for (const message of messages) {
            const value = message.value?.toString("utf8") ?? "";
            seen.push(value);
            if (value === "blocking" && seen.length === 1) {
              groupDuringBlock.push(await describe());
              // The scenario itself, not a synchronisation: a handler busy for 1.5 session timeouts (as one
              // retrying a database outage is).
              await new Promise((resolve) => setTimeout(resolve, SESSION_TIMEOUT_MS * 1.5));
              groupDuringBlock.push(await describe());
              await bus.publish(topic, [{ key: "k", value: "after" }]);
            }
            if (value === "after") controller.abort();
          }
          return true;
        },
      },
      controller.signal,
    );
  } finally {
    clearTimeout(deadline);
    await admin.disconnect();
    await bus.close();
  }
  assert.deepEqual(seen, ["blocking", "after"], "the blocked message was handled once, then the next one");
  const [before, after] = groupDuringBlock;
  assert.equal(before?.state, "Stable");
  assert.equal(after?.state, "Stable", "the group did not drop the busy member");
  assert.deepEqual(after?.members, before?.members, "the same single member holds the partition");
  assert.equal(after?.members.length, 1);
});
