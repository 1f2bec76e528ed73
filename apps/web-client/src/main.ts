/**
 * Page entry: pick a backend, decide the capacity, start the session and render its events.
 * Opening the URL is enough; `?backend=webgl` and `?capacity=2` override the automatic choices.
 */
import "./style.css";
import { chooseBackend, type TfBackend } from "./backend.ts";
import { Session, type SessionState } from "./session.ts";

const $ = <T extends HTMLElement = HTMLElement>(id: string): T => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`#${id} missing from index.html`);
  return el as T;
};

const STATE_TEXT: Record<SessionState, string> = {
  connecting: "Connecting…",
  joined: "Joined",
  downloading: "Downloading data",
  waiting: "Waiting for a round",
  training: "Training",
  uploading: "Uploading update",
  paused: "Paused",
  left: "Left",
  disconnected: "Reconnecting…",
  error: "Error",
};

/** A rough capacity from what the device says about itself; the coordinator may cap it. */
function defaultCapacity(backend: TfBackend): number {
  const mem = (navigator as Navigator & { deviceMemory?: number }).deviceMemory ?? 4;
  const base = backend === "webgpu" || backend === "webgl" ? 3 : 2;
  return Math.max(1, Math.min(4, mem < 2 ? 1 : base));
}

async function start(): Promise<void> {
  const params = new URLSearchParams(location.search);
  const choice = await chooseBackend(params.get("backend"));
  const backendEl = $("backend");
  backendEl.textContent = choice.backend;
  backendEl.dataset.backend = choice.backend;
  if (choice.skipped.length > 0) $("note").textContent = `Using ${choice.backend}: ${choice.skipped[0]}`;
  const asked = Number(params.get("capacity"));
  const capacity = Number.isInteger(asked) && asked >= 1 ? asked : defaultCapacity(choice.backend);

  const progress = $<HTMLProgressElement>("progress");
  const accList = $("accuracy");
  const session = new Session(
    { capacity, backend: choice.backend, ...(params.get("label") ? { label: params.get("label")! } : {}) },
    {
      state(s, detail) {
        const el = $("state");
        el.textContent = STATE_TEXT[s] + (detail && s !== "waiting" ? ` (${detail})` : "");
        el.dataset.state = s;
        progress.hidden = s !== "training";
        if (s === "error" || s === "disconnected") $("note").textContent = detail ?? "";
      },
      joined(info) {
        $("client").textContent = info.clientId;
        $("capacity").textContent = `${info.capacity} of ${info.experts} experts`;
      },
      round(round, experts) {
        $("round").textContent = String(round);
        $("experts").textContent = experts.join(", ");
      },
      progress(f) {
        progress.value = f;
      },
      accuracy(round, acc) {
        const li = document.createElement("li");
        li.value = round;
        li.dataset.round = String(round);
        li.dataset.accuracy = acc.toFixed(4);
        li.textContent = `round ${round}: ${(acc * 100).toFixed(1)}%`;
        accList.append(li);
      },
      closed() {},
    },
  );

  const pause = $<HTMLButtonElement>("pause");
  let paused = false;
  pause.addEventListener("click", () => {
    paused = !paused;
    pause.textContent = paused ? "Resume" : "Pause";
    void session.setPaused(paused);
  });
  $("leave").addEventListener("click", () => {
    session.leave();
    pause.disabled = true;
    ($("leave") as HTMLButtonElement).disabled = true;
  });
}

start().catch((e: unknown) => {
  const el = document.getElementById("state");
  if (el) {
    el.textContent = `Error (${(e as Error).message})`;
    el.dataset.state = "error";
  }
});
