// Exits 0 when the Kafka broker at argv[2] answers a metadata request (not merely accepts TCP).
import kafkajs from "kafkajs";

const { Kafka, logLevel } = kafkajs;
const admin = new Kafka({
  clientId: "kafka-ready",
  brokers: [process.argv[2]],
  logLevel: logLevel.NOTHING,
  connectionTimeout: 1000,
  retry: { retries: 0 },
}).admin();
try {
  await admin.connect();
  await admin.listTopics();
  process.exit(0);
} catch {
  process.exit(1);
} finally {
  await admin.disconnect().catch(() => undefined);
}
