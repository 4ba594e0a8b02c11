import { randomBytes } from "node:crypto";
import kafkajs from "kafkajs";

const { Kafka, logLevel } = kafkajs;

/** The broker `make test` started (scripts/kafka.sh), or the cluster named by KAFKA_BROKERS. */
export function testBrokers(): string[] {
  const brokers = process.env.KAFKA_BROKERS?.split(",").filter(Boolean) ?? [];
  if (brokers.length === 0) {
    throw new Error("KAFKA_BROKERS is not set: run the suite with `make test`, which starts a broker");
  }
  return brokers;
}

export function uniqueName(prefix: string): string {
  return `${prefix}-${randomBytes(5).toString("hex")}`;
}

function client(brokers = testBrokers()) {
  return new Kafka({ clientId: uniqueName("test-client"), brokers, logLevel: logLevel.NOTHING });
}

/** Produces raw values to a topic, as a foreign or broken producer would. */
export async function produceRaw(topic: string, messages: { key: string | null; value: string }[]) {
  const producer = client().producer({ allowAutoTopicCreation: true });
  await producer.connect();
  try {
    await producer.send({ topic, messages });
  } finally {
    await producer.disconnect();
  }
}

/**
 * Reads a topic from the beginning with a fresh group until `expected` messages arrived, then waits
 * `settleMs` more to catch any extra (duplicates), and returns every message's value.
 */
export async function readTopic(topic: string, expected: number, settleMs = 1_500, timeoutMs = 60_000) {
  const admin = client().admin();
  await admin.connect();
  try {
    await admin.createTopics({ topics: [{ topic, numPartitions: 3 }], waitForLeaders: true });
  } finally {
    await admin.disconnect();
  }
  const consumer = client().consumer({ groupId: uniqueName("test-reader"), maxWaitTimeInMs: 100 });
  const values: string[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    let reached: () => void = () => undefined;
    const enough = new Promise<void>((resolve) => {
      reached = resolve;
    });
    await consumer.run({
      eachMessage: async ({ message }) => {
        values.push(message.value?.toString("utf8") ?? "");
        if (values.length >= expected) reached();
      },
    });
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<void>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`read ${values.length} of ${expected} messages from ${topic}`)),
        timeoutMs,
      );
    });
    try {
      await Promise.race([enough, late]);
    } finally {
      clearTimeout(timer);
    }
    await new Promise((resolve) => setTimeout(resolve, settleMs));
    return values;
  } finally {
    await consumer.disconnect();
  }
}
