/**
 * The fake Feishu server in a process of its own (forked with IPC), so that it does not share the measured
 * process's event loop: a real webhook is remote. Reports each request as `{preview, at}`, `at` in epoch ms.
 *   argv[2]: the answer delay in ms
 */
import { startFakeFeishu } from "../test/support/fake-feishu.ts";

const send = (message: unknown) => process.send?.(message);
const fake = await startFakeFeishu();
fake.setDefaultDelay(Number(process.argv[2] ?? 20));
process.on("disconnect", () => process.exit(0));
// Reported requests are dropped, so a long run (the soak) does not pile them up here.
setInterval(() => {
  const fresh = fake.requests.splice(0);
  if (fresh.length > 0) {
    send({
      type: "requests",
      items: fresh.map((r) => ({
        preview: String(r.body.preview_id ?? ""),
        at: performance.timeOrigin + r.at,
      })),
    });
  }
}, 10);
send({ type: "ready", host: fake.host, origin: fake.origin });
