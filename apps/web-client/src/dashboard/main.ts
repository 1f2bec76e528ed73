/**
 * Dashboard entry (/dashboard): renders every `dashboard:state` pushed on the `/dashboard`
 * namespace (no polling). With `#admin=<token>` (the link the coordinator prints) the controls
 * appear; they send `POST /api/admin` with the token as a Bearer credential. The token moves from
 * the address bar to sessionStorage at once: the dashboard is projected in front of the class.
 */
import "../style.css";
import "./dashboard.css";
import { STRATEGY_NAMES, type AckResult, type AdminCommand, type DashboardServerToClientEvents, type DashboardState } from "@flexmoe/core";
import QRCode from "qrcode";
import { io, type Socket } from "socket.io-client";
import { DashboardCharts } from "./charts.ts";
import { renderHeatmap } from "./heatmap.ts";

const $ = <T extends HTMLElement = HTMLElement>(id: string): T => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`#${id} missing from dashboard.html`);
  return el as T;
};

const pct = (v: number | null): string => (v === null ? "–" : `${(v * 100).toFixed(1)}%`);

const charts = new DashboardCharts({
  accuracy: $<HTMLCanvasElement>("chart-accuracy"),
  cv: $<HTMLCanvasElement>("chart-cv"),
  load: $<HTMLCanvasElement>("chart-load"),
});

let qrFor = "";
function renderJoin(s: DashboardState): void {
  const url = s.joinUrls[0] ?? `${location.origin}/`;
  const link = $<HTMLAnchorElement>("join-url");
  link.href = url;
  link.textContent = url;
  const more = s.joinUrls.slice(1).filter((u) => u !== url);
  $("join-more").textContent = more.length > 0 ? `Also: ${more.join("  ·  ")}` : "";
  if (url !== qrFor) {
    qrFor = url;
    const canvas = $<HTMLCanvasElement>("qr");
    canvas.dataset.url = url;
    QRCode.toCanvas(canvas, url, { width: 240, margin: 1, color: { dark: "#1d3557", light: "#ffffff" } }).catch(() => {
      qrFor = "";
    });
  }
}

function renderClients(s: DashboardState): void {
  const table = $<HTMLTableElement>("clients");
  const body = table.tBodies[0]!;
  // The server lists a bounded number (online first); say so when there are more.
  const hidden = s.totals.clients - s.clients.length;
  if (hidden > 0) table.createCaption().textContent = `${s.clients.length} of ${s.totals.clients} clients shown (online first)`;
  else table.deleteCaption();
  const rows = s.clients.map((c) => {
    const tr = document.createElement("tr");
    tr.dataset.client = c.id;
    tr.dataset.online = String(c.online);
    const cells = [
      c.label ? `${c.id} (${c.label})` : c.id,
      c.backend,
      String(c.capacity),
      c.experts.join(", ") || "–",
      c.lastRound > 0 ? String(c.lastRound) : "–",
      pct(c.accuracy),
      c.online ? (c.ready ? "ready" : "online") : "offline",
    ];
    for (const text of cells) tr.insertCell().textContent = text;
    return tr;
  });
  body.replaceChildren(...rows);
}

function render(s: DashboardState): void {
  const phase = $("phase");
  phase.textContent = s.phase;
  phase.dataset.phase = s.phase;
  $("round").textContent = String(s.round);
  $("round-limit").textContent = s.rounds > 0 ? ` / ${s.rounds}` : "";
  $("strategy").textContent = s.strategy;
  $("online").textContent = String(s.totals.online);
  document.body.dataset.round = String(s.round);
  renderJoin(s);
  charts.update(s);
  renderHeatmap($<HTMLTableElement>("fitness"), s);
  renderClients(s);
  const sel = $<HTMLSelectElement>("sel-strategy");
  if (document.activeElement !== sel) sel.value = s.strategy;
  const rounds = $<HTMLInputElement>("inp-rounds");
  if (document.activeElement !== rounds) rounds.value = String(s.rounds);
}

const socket: Socket<DashboardServerToClientEvents, Record<string, never>> = io("/dashboard", { transports: ["websocket"] });
socket.on("dashboard:state", render);
socket.on("connect", () => {
  const el = $("conn");
  el.textContent = "live";
  el.dataset.connected = "true";
});
socket.on("disconnect", () => {
  const el = $("conn");
  el.textContent = "reconnecting…";
  el.dataset.connected = "false";
});

const ADMIN_KEY = "flexmoe.adminToken";

/** The admin token: from `#admin=` (then stored for this tab and removed from the URL), or from this tab's storage. */
function takeAdminToken(): string | null {
  const params = new URLSearchParams(location.hash.slice(1));
  const fromHash = params.get("admin");
  if (fromHash) {
    try {
      sessionStorage.setItem(ADMIN_KEY, fromHash);
    } catch {
      // Storage refused (private mode): the token still works until the page is reloaded.
    }
    params.delete("admin");
    const rest = params.toString();
    history.replaceState(history.state, "", `${location.pathname}${location.search}${rest ? `#${rest}` : ""}`);
    return fromHash;
  }
  try {
    return sessionStorage.getItem(ADMIN_KEY);
  } catch {
    return null;
  }
}

// Admin controls: only with the token from the coordinator's start-up output.
const token = takeAdminToken();
if (token) {
  $("admin").hidden = false;
  const msg = $("admin-msg");
  const send = async (cmd: AdminCommand): Promise<void> => {
    msg.textContent = "…";
    try {
      const resp = await fetch("/api/admin", {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
        body: JSON.stringify(cmd),
      });
      const res = (await resp.json()) as AckResult<{ phase: string }>;
      msg.textContent = res.ok ? `${cmd.action}: done (${res.value.phase})` : `${res.error.code}: ${res.error.message}`;
      msg.dataset.ok = String(res.ok);
    } catch (e) {
      msg.textContent = `no answer: ${(e as Error).message}`;
      msg.dataset.ok = "false";
    }
  };
  $("btn-start").addEventListener("click", () => void send({ action: "start" }));
  $("btn-pause").addEventListener("click", () => void send({ action: "pause" }));
  // The choices come from core's strategy registry, so a new strategy shows up here by itself.
  $<HTMLSelectElement>("sel-strategy").replaceChildren(
    ...STRATEGY_NAMES.map((name) => Object.assign(document.createElement("option"), { value: name, textContent: name })),
  );
  $<HTMLSelectElement>("sel-strategy").addEventListener("change", (ev) => {
    const value = (ev.target as HTMLSelectElement).value as Extract<AdminCommand, { action: "set-strategy" }>["value"];
    void send({ action: "set-strategy", value });
  });
  $("btn-rounds").addEventListener("click", () => {
    const value = Number($<HTMLInputElement>("inp-rounds").value);
    if (Number.isInteger(value) && value >= 0) void send({ action: "set-rounds", value });
    else msg.textContent = "rounds must be a whole number ≥ 0";
  });
  $("btn-reset").addEventListener("click", () => {
    if (confirm("Start a new run? The global model, Q and the round history are discarded.")) void send({ action: "reset" });
  });
}
