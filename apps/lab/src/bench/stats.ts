/**
 * Pure helpers of the benchmarks: robust summaries of repeated timings, rates, byte formatting
 * and a plain-text table. No clocks are read here, so everything is unit-testable.
 */

/** Median of the values (mean of the two middle ones for an even count); NaN for none. */
export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/** Linear-interpolated quantile q in [0, 1]; NaN for no values. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  if (!(q >= 0 && q <= 1)) throw new RangeError(`quantile: q must be in [0, 1], got ${q}`);
  const s = [...values].sort((a, b) => a - b);
  const pos = q * (s.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  const a = s[lo] as number;
  const b = s[hi] as number;
  return a + (b - a) * (pos - lo);
}

/** a / b, or null when either is not a finite number or b is 0 (a ratio that cannot be formed). */
export function ratio(a: number, b: number): number | null {
  if (!Number.isFinite(a) || !Number.isFinite(b) || b === 0) return null;
  return a / b;
}

/** Rounds to `digits` significant digits (keeps JSON output readable); non-finite values pass through. */
export function sig(x: number, digits = 4): number {
  if (!Number.isFinite(x) || x === 0) return x;
  return Number(x.toPrecision(digits));
}

/** Relative optimality gap (best - found) / max(1, |best|), clamped at 0 from below within tol. */
export function relativeGap(best: number, found: number, tol = 1e-9): number {
  const g = (best - found) / Math.max(1, Math.abs(best));
  return Math.abs(g) <= tol ? 0 : g;
}

/** Slope of the least-squares line through (x, y) points; NaN with fewer than 2 distinct x. */
export function slope(points: readonly { x: number; y: number }[]): number {
  const n = points.length;
  if (n < 2) return Number.NaN;
  const mx = points.reduce((s, p) => s + p.x, 0) / n;
  const my = points.reduce((s, p) => s + p.y, 0) / n;
  let num = 0;
  let den = 0;
  for (const p of points) {
    num += (p.x - mx) * (p.y - my);
    den += (p.x - mx) ** 2;
  }
  return den === 0 ? Number.NaN : num / den;
}

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB"] as const;

/** 1536 -> "1.5 KiB". */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes)) return String(bytes);
  let v = Math.abs(bytes);
  let u = 0;
  while (v >= 1024 && u < UNITS.length - 1) {
    v /= 1024;
    u++;
  }
  const s = u === 0 ? String(Math.round(v)) : v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
  return `${bytes < 0 ? "-" : ""}${s} ${UNITS[u]}`;
}

/** A cell for tables: numbers to a few significant digits, null/undefined as "-". */
export function cell(v: unknown): string {
  if (v === null || v === undefined) return "-";
  if (typeof v === "number") {
    if (!Number.isFinite(v)) return String(v);
    if (Number.isInteger(v)) return String(v);
    return String(sig(v, 3));
  }
  return String(v);
}

/** Plain-text table with a header row, columns padded to their widest cell. */
export function formatTable(headers: readonly string[], rows: readonly (readonly unknown[])[]): string {
  const cells = [headers.map(String), ...rows.map((r) => headers.map((_, i) => cell(r[i])))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? "").length)));
  const line = (r: readonly string[]): string =>
    r
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join("  ")
      .trimEnd();
  return [line(cells[0] as string[]), widths.map((w) => "-".repeat(w)).join("  "), ...cells.slice(1).map(line)].join("\n");
}

/** Same table as GitHub markdown. */
export function formatMarkdownTable(headers: readonly string[], rows: readonly (readonly unknown[])[]): string {
  const row = (r: readonly string[]): string => `| ${r.join(" | ")} |`;
  return [row(headers.map(String)), row(headers.map(() => "---")), ...rows.map((r) => row(headers.map((_, i) => cell(r[i]))))].join("\n");
}

/** Peak and current resident set size from the text of /proc/<pid>/status (bytes); null when absent. */
export function parseProcStatus(text: string): { hwmBytes: number | null; rssBytes: number | null } {
  const kb = (key: string): number | null => {
    const m = new RegExp(`^${key}:\\s+(\\d+)\\s+kB`, "m").exec(text);
    return m ? Number(m[1]) * 1024 : null;
  };
  return { hwmBytes: kb("VmHWM"), rssBytes: kb("VmRSS") };
}
