/** Dependency-free SVG charts for the experiment report: line panels and heat maps. */

export const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];

export interface Series {
  name: string;
  /** y per x = 1..n (rounds). Non-finite values break the line. */
  values: readonly number[];
  /** Optional +- band (e.g. std over seeds), same length as values. */
  spread?: readonly number[];
  color?: string;
  dashed?: boolean;
}

export interface LinePanel {
  title: string;
  series: readonly Series[];
}

export interface LineChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  panels: readonly LinePanel[];
  /** Fixed y range; default: the data's range (panels share it). */
  yMin?: number;
  yMax?: number;
  panelWidth?: number;
  panelHeight?: number;
}

export const esc = (s: string): string => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
const f = (x: number): string => (Math.round(x * 10) / 10).toString();

/** "Nice" tick values covering [lo, hi]. */
export function ticks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = ([1, 2, 2.5, 5, 10].find((m) => m * mag >= raw) ?? 10) * mag;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step - 1e-9) * step; v <= hi + 1e-9 * step; v += step) out.push(Math.abs(v) < 1e-12 ? 0 : v);
  return out;
}

const fmtTick = (v: number): string => (Math.abs(v) >= 1000 ? `${f(v / 1000)}k` : String(Number(v.toPrecision(4))));

export function lineChart(o: LineChartOptions): string {
  const pw = o.panelWidth ?? 420;
  const ph = o.panelHeight ?? 280;
  const m = { l: 56, r: 12, t: 28, b: 40 };
  const legendH = 22;
  const names: string[] = [];
  const colors = new Map<string, string>();
  let lo = Infinity;
  let hi = -Infinity;
  let maxN = 1;
  for (const p of o.panels)
    for (const s of p.series) {
      if (!colors.has(s.name)) {
        colors.set(s.name, s.color ?? PALETTE[names.length % PALETTE.length] ?? "#000");
        names.push(s.name);
      }
      maxN = Math.max(maxN, s.values.length);
      s.values.forEach((v, i) => {
        if (!Number.isFinite(v)) return;
        const d = s.spread?.[i] ?? 0;
        lo = Math.min(lo, v - d);
        hi = Math.max(hi, v + d);
      });
    }
  if (!Number.isFinite(lo)) [lo, hi] = [0, 1];
  if (o.yMin !== undefined) lo = o.yMin;
  if (o.yMax !== undefined) hi = o.yMax;
  if (hi <= lo) hi = lo + (Math.abs(lo) || 1) * 0.1;
  const yt = ticks(lo, hi);
  const W = o.panels.length * pw;
  const H = ph + 30 + legendH;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="${W / 2}" y="18" text-anchor="middle" font-size="14" font-weight="bold">${esc(o.title)}</text>`,
  ];
  o.panels.forEach((p, pi) => {
    const ox = pi * pw;
    const oy = 30;
    const iw = pw - m.l - m.r;
    const ih = ph - m.t - m.b;
    const X = (i: number): number => ox + m.l + (maxN <= 1 ? iw / 2 : (i / (maxN - 1)) * iw);
    const Y = (v: number): number => oy + m.t + ih - ((Math.min(hi, Math.max(lo, v)) - lo) / (hi - lo)) * ih;
    parts.push(`<text x="${ox + m.l + iw / 2}" y="${oy + 16}" text-anchor="middle" font-size="12">${esc(p.title)}</text>`);
    parts.push(`<rect x="${ox + m.l}" y="${oy + m.t}" width="${iw}" height="${ih}" fill="none" stroke="#999"/>`);
    for (const v of yt) {
      parts.push(`<line x1="${ox + m.l}" x2="${ox + m.l + iw}" y1="${f(Y(v))}" y2="${f(Y(v))}" stroke="#eee"/>`);
      parts.push(`<text x="${ox + m.l - 4}" y="${f(Y(v) + 4)}" text-anchor="end">${fmtTick(v)}</text>`);
    }
    for (const t of ticks(1, maxN, Math.min(maxN, 8)).filter((t) => Number.isInteger(t))) {
      parts.push(`<text x="${f(X(t - 1))}" y="${oy + m.t + ih + 14}" text-anchor="middle">${t}</text>`);
    }
    parts.push(`<text x="${ox + m.l + iw / 2}" y="${oy + ph - 8}" text-anchor="middle">${esc(o.xLabel)}</text>`);
    parts.push(`<text transform="translate(${ox + 14},${oy + m.t + ih / 2}) rotate(-90)" text-anchor="middle">${esc(o.yLabel)}</text>`);
    for (const s of p.series) {
      const color = colors.get(s.name) ?? "#000";
      if (s.spread) {
        const up: string[] = [];
        const down: string[] = [];
        s.values.forEach((v, i) => {
          if (!Number.isFinite(v)) return;
          const d = s.spread?.[i] ?? 0;
          up.push(`${f(X(i))},${f(Y(v + d))}`);
          down.unshift(`${f(X(i))},${f(Y(v - d))}`);
        });
        if (up.length > 1)
          parts.push(`<polygon points="${[...up, ...down].join(" ")}" fill="${color}" fill-opacity="0.12" stroke="none"/>`);
      }
      let d = "";
      let pen = false;
      s.values.forEach((v, i) => {
        if (!Number.isFinite(v)) {
          pen = false;
          return;
        }
        d += `${pen ? "L" : "M"}${f(X(i))},${f(Y(v))}`;
        pen = true;
      });
      if (d) parts.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="1.8"${s.dashed ? ' stroke-dasharray="5,3"' : ""}/>`);
    }
  });
  let lx = 10;
  const ly = H - 8;
  for (const name of names) {
    parts.push(`<rect x="${lx}" y="${ly - 9}" width="14" height="4" fill="${colors.get(name) ?? "#000"}"/>`);
    parts.push(`<text x="${lx + 18}" y="${ly - 4}">${esc(name)}</text>`);
    lx += 26 + name.length * 6.5;
  }
  parts.push("</svg>");
  return parts.join("\n");
}

export interface HeatPanel {
  title: string;
  /** rows x cols values in [0, max]. */
  matrix: readonly (readonly number[])[];
}

/** Side-by-side heat maps (rows = clients, columns = experts), white (0) to dark blue (max). */
export function heatmaps(o: { title: string; rowLabel: string; colLabel: string; panels: readonly HeatPanel[]; cell?: number }): string {
  const cell = o.cell ?? 14;
  const rows = Math.max(1, ...o.panels.map((p) => p.matrix.length));
  const cols = Math.max(1, ...o.panels.map((p) => Math.max(0, ...p.matrix.map((r) => r.length))));
  const max = Math.max(1e-12, ...o.panels.flatMap((p) => p.matrix.flatMap((r) => [...r])));
  const pw = Math.max(cols * cell + 50, 130);
  const ph = rows * cell + 72;
  const W = o.panels.length * pw + 10;
  const H = ph + 30;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="10">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="${W / 2}" y="18" text-anchor="middle" font-size="14" font-weight="bold">${esc(o.title)}</text>`,
  ];
  o.panels.forEach((p, pi) => {
    const ox = pi * pw + 40;
    const oy = 64;
    parts.push(`<text x="${ox + (cols * cell) / 2}" y="${oy - 22}" text-anchor="middle" font-size="12">${esc(p.title)}</text>`);
    for (let c = 0; c < cols; c++) parts.push(`<text x="${ox + c * cell + cell / 2}" y="${oy - 4}" text-anchor="middle">${c}</text>`);
    p.matrix.forEach((r, ri) => {
      parts.push(`<text x="${ox - 4}" y="${oy + ri * cell + cell - 3}" text-anchor="end">${ri + 1}</text>`);
      r.forEach((v, ci) => {
        const t = Math.max(0, Math.min(1, v / max));
        const shade = (a: number, b: number): number => Math.round(a + (b - a) * t);
        const fill = `rgb(${shade(255, 8)},${shade(255, 48)},${shade(255, 107)})`;
        parts.push(
          `<rect x="${ox + ci * cell}" y="${oy + ri * cell}" width="${cell - 1}" height="${cell - 1}" fill="${fill}" stroke="#ddd" stroke-width="0.5"/>`,
        );
      });
    });
    parts.push(`<text x="${ox + (cols * cell) / 2}" y="${oy + rows * cell + 14}" text-anchor="middle">${esc(o.colLabel)}</text>`);
  });
  parts.push(`<text transform="translate(12,${64 + (rows * cell) / 2}) rotate(-90)" text-anchor="middle">${esc(o.rowLabel)}</text>`);
  parts.push("</svg>");
  return parts.join("\n");
}
