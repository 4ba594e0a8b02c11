import { readFileSync } from "node:fs";

/** One reading of a process's memory from /proc/<pid>/status (Linux), in MB. */
export interface RssSample {
  /** ms since the sampling began. */
  readonly atMs: number;
  readonly rssMb: number;
  /** The kernel's high-water mark of the resident set (VmHWM): the peak, even between samples. */
  readonly hwmMb: number;
}

export function readRss(pid: number): { rssMb: number; hwmMb: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? 0);
  return { rssMb: kb("VmRSS") / 1024, hwmMb: kb("VmHWM") / 1024 };
}

/** Samples `pid` every `everyMs` until `stop()`; the samples so far are in `samples`. */
export function sampleRss(pid: number, everyMs: number) {
  const samples: RssSample[] = [];
  const started = performance.now();
  const take = () => samples.push({ atMs: performance.now() - started, ...readRss(pid) });
  take();
  const timer = setInterval(take, everyMs);
  return {
    samples,
    stop() {
      clearInterval(timer);
      take();
    },
  };
}

/** Least-squares slope of RSS over time, in MB per minute. */
export function slopeMbPerMin(samples: readonly RssSample[]): number {
  const n = samples.length;
  if (n < 2) return 0;
  const xs = samples.map((s) => s.atMs / 60_000);
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = samples.reduce((a, s) => a + s.rssMb, 0) / n;
  let num = 0;
  let den = 0;
  samples.forEach((s, i) => {
    const dx = (xs[i] ?? 0) - mx;
    num += dx * (s.rssMb - my);
    den += dx * dx;
  });
  return den === 0 ? 0 : num / den;
}

/** The samples of the second half of the run (by time). */
export function secondHalf(samples: readonly RssSample[]): RssSample[] {
  const end = samples.at(-1)?.atMs ?? 0;
  return samples.filter((s) => s.atMs >= end / 2);
}
