/**
 * Wall-clock times in a named zone, for MySQL `datetime` columns. SmartFlow's Go services write them in the
 * process's local zone (`loc=Local` in their DSN); a service that shares their tables must read and write
 * the same wall clock, even when its own process runs in another zone (UTC in a container, say). The zone is
 * an IANA name (`Asia/Shanghai`), so daylight-saving changes are followed as Go's `time.Local` follows them,
 * or `local` for this process's zone.
 */
export interface ZonedTime {
  readonly zone: string;
  /** `YYYY-MM-DD HH:MM:SS.mmm` in the zone. */
  format(date: Date): string;
  /** The instant a `YYYY-MM-DD HH:MM:SS[.fff]` wall-clock time in the zone stands for. */
  parse(text: string): Date;
}

/** Throws a RangeError naming the zone when it is not a zone this runtime knows. */
export function zonedTime(zone: string): ZonedTime {
  if (zone === "local") return localTime;
  const parts = new Intl.DateTimeFormat("en-US", {
    timeZone: zone,
    hourCycle: "h23",
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  });
  // Offsets only change on minute boundaries that are multiples of 15 minutes; cache by quarter hour.
  const cache = new Map<number, number>();
  const offsetMs = (utcMs: number): number => {
    const bucket = Math.floor(utcMs / 900_000);
    let offset = cache.get(bucket);
    if (offset === undefined) {
      const at = bucket * 900_000;
      const f: Record<string, number> = {};
      for (const part of parts.formatToParts(at)) f[part.type] = Number(part.value);
      const wall = Date.UTC(
        f.year ?? 0,
        (f.month ?? 1) - 1,
        f.day ?? 1,
        f.hour ?? 0,
        f.minute ?? 0,
        f.second ?? 0,
      );
      offset = wall - at;
      if (cache.size > 10_000) cache.clear();
      cache.set(bucket, offset);
    }
    return offset;
  };
  return {
    zone,
    format: (date) => wallText(date.getTime() + offsetMs(date.getTime())),
    parse(text) {
      const wall = wallMs(text);
      // The instant is the wall time minus the offset in force then. Around a daylight-saving change, the
      // offsets before and after are both candidates (offsets stay within ±14 h): a wall time that occurs
      // twice resolves to the earlier instant; one skipped by the change is read with the earlier offset.
      const candidates = [wall - offsetMs(wall - 50_400_000), wall - offsetMs(wall + 50_400_000)];
      const valid = candidates.filter((at) => offsetMs(at) === wall - at);
      return new Date(Math.min(...(valid.length > 0 ? valid : candidates.slice(0, 1))));
    },
  };
}

const localTime: ZonedTime = {
  zone: "local",
  format(date) {
    const pad = (n: number, width = 2) => String(n).padStart(width, "0");
    return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}.${pad(date.getMilliseconds(), 3)}`;
  },
  parse(text) {
    const m = match(text);
    return new Date(m.year, m.month - 1, m.day, m.hour, m.minute, m.second, m.ms);
  },
};

function wallText(wallMs: number): string {
  return new Date(wallMs).toISOString().replace("T", " ").slice(0, 23);
}

function wallMs(text: string): number {
  const m = match(text);
  return Date.UTC(m.year, m.month - 1, m.day, m.hour, m.minute, m.second, m.ms);
}

function match(text: string) {
  const m = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?$/.exec(text.trim());
  if (!m) throw new RangeError(`not a datetime: ${JSON.stringify(text.slice(0, 40))}`);
  const n = (i: number) => Number(m[i]);
  return {
    year: n(1),
    month: n(2),
    day: n(3),
    hour: n(4),
    minute: n(5),
    second: n(6),
    ms: Math.floor(Number(`0.${m[7] ?? "0"}`) * 1000),
  };
}
