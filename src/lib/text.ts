/** Cuts `text` to at most `max` Unicode code points, so a multi-byte character is never split (weakness 14). */
export function truncateCodePoints(text: string, max: number): string {
  if (text.length <= max) return text;
  const points = Array.from(text);
  return points.length <= max ? text : points.slice(0, max).join("");
}
