/** Cuts `text` to at most `max` Unicode code points, so a multi-byte character is never split (weakness 14). */
export function truncateCodePoints(text: string, max: number): string {
  if (text.length <= max) return text;
  const points = Array.from(text);
  return points.length <= max ? text : points.slice(0, max).join("");
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
