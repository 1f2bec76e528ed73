/**
 * The fitness matrix Q as an HTML table (clients × experts): each cell's colour is its value,
 * the experts a client holds in the current (or last) round are marked ●. A table, not a canvas:
 * it scales on phones, reads out in screen readers and needs no chart plugin.
 */
import type { DashboardState } from "@flexmoe/core";

/** White (0) to navy (1). */
function shade(q: number): string {
  const t = Math.max(0, Math.min(1, q));
  const mix = (a: number, b: number) => Math.round(a + (b - a) * t);
  return `rgb(${mix(255, 29)}, ${mix(255, 53)}, ${mix(255, 87)})`;
}

export function renderHeatmap(table: HTMLTableElement, s: DashboardState): void {
  const head = document.createElement("thead");
  const hr = head.insertRow();
  hr.append(th("client"));
  for (let e = 0; e < s.experts; e++) hr.append(th(`E${e}`));
  const body = document.createElement("tbody");
  s.fitness.clients.forEach((id, c) => {
    const row = body.insertRow();
    row.dataset.client = id;
    row.append(th(id, "row"));
    const held = new Set(s.assignment[id] ?? []);
    const q = s.fitness.q[c] ?? [];
    for (let e = 0; e < s.experts; e++) {
      const v = q[e] ?? 0;
      const td = row.insertCell();
      td.style.background = shade(v);
      td.style.color = v > 0.55 ? "white" : "#1d3557";
      td.title = `Q(${id}, E${e}) = ${v.toFixed(3)}${held.has(e) ? ", assigned" : ""}`;
      td.textContent = `${held.has(e) ? "● " : ""}${v.toFixed(2)}`;
      if (held.has(e)) td.className = "assigned";
    }
  });
  table.replaceChildren(head, body);
}

function th(text: string, scope: "col" | "row" = "col"): HTMLTableCellElement {
  const el = document.createElement("th");
  el.scope = scope;
  el.textContent = text;
  return el;
}
