// Worker thread: runs executions (several at once, interleaved at host-call awaits) and asks
// the main thread to run host calls. The main thread may terminate it at any time.
import { parentPort, workerData } from "node:worker_threads";
import { runJob } from "./sandbox.ts";
import type { FromWorker, ToWorker } from "./types.ts";

const port = parentPort!;
const preludes = (workerData as { preludes: string[] }).preludes;
type Reply = Extract<ToWorker, { t: "reply" }>;
const waiting = new Map<string, (r: Reply) => void>();
let nextCall = 0;
const send = (m: FromWorker) => port.postMessage(m);

port.on("message", (m: ToWorker) => {
  if (m.t === "reply") {
    const key = `${m.id}:${m.callId}`;
    waiting.get(key)?.(m);
    waiting.delete(key);
    return;
  }
  const id = m.id;
  send({ t: "started", id });
  void runJob(
    m.job,
    (name, args) =>
      new Promise((resolve) => {
        const callId = nextCall++;
        waiting.set(`${id}:${callId}`, (r) => resolve(r.ok ? { ok: true, value: r.value } : { ok: false, message: r.message, fatal: r.fatal }));
        send({ t: "call", id, callId, name, args });
      }),
    preludes,
  ).then((outcome) => send({ t: "done", id, outcome }));
});
send({ t: "ready" });
