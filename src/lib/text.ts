/** Cuts `text` to at most `max` Unicode code points, so a multi-byte character is never split (weakness 14). */
export function truncateCodePoints(text: string, max: number): string {
  if (text.length <= max) return text;
  const points = Array.from(text);
  return points.length <= max ? text : points.slice(0, max).join("");
}

/**
 * Cuts `text` to at most `maxChars` code points and `maxBytes` UTF-8 bytes, marking a cut with "…" (which
 * counts towards both bounds). For text that may hold caller input and goes back out (error messages).
 */
export function capText(text: string, maxChars: number, maxBytes: number): string {
  if (text.length <= maxChars && (text.length * 3 <= maxBytes || Buffer.byteLength(text) <= maxBytes))
    return text;
  const points = Array.from(text);
  if (points.length <= maxChars && Buffer.byteLength(text) <= maxBytes) return text;
  let bytes = 3; // the "…"
  let kept = 0;
  for (const point of points) {
    const size = Buffer.byteLength(point);
    if (kept + 1 >= maxChars || bytes + size > maxBytes) break;
    bytes += size;
    kept++;
  }
  return `${points.slice(0, kept).join("")}…`;
}

/**
 * Caller input quoted in a message: at most `max` code points (256 by default), then "…(N more)". Messages
 * built from input should quote it through this, so the message stays readable after the central cap.
 */
export function quoteInput(value: string, max = 256): string {
  const points = Array.from(value);
  if (points.length <= max) return value;
  return `${points.slice(0, max).join("")}…(${points.length - max} more)`;
}

/** A duration for people: `7 d 2 h`, `24 h`, `90 min` → `1 h 30 min`, `45 s`; the two largest units. */
export function formatDuration(ms: number): string {
  const units: [string, number][] = [
    ["d", 86_400_000],
    ["h", 3_600_000],
    ["min", 60_000],
    ["s", 1_000],
  ];
  let rest = Math.max(0, Math.round(ms));
  const parts: string[] = [];
  for (const [name, size] of units) {
    const count = Math.floor(rest / size);
    rest -= count * size;
    if (count > 0 || parts.length > 0) parts.push(`${count} ${name}`);
    if (parts.length === 2) break;
  }
  const shown = parts.filter((part) => !part.startsWith("0 "));
  return shown.length > 0 ? shown.join(" ") : `${Math.max(0, Math.round(ms))} ms`;
}
