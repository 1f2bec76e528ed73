/**
 * Page entry: start the session at once (it joins with no TF.js loaded), then, once the join has named
 * the model, load TF.js and settle the backend (measured, or remembered for this device and model) and
 * the capacity; render the session's events. Opening the URL is enough; `?backend=webgl` and
 * `?capacity=2` override the automatic choices. Rules this page keeps: training pauses while the tab is
 * hidden or the battery is low (unless the volunteer opts in), and the screen stays on while a round
 * trains (wake lock, where there is one).
 */
import "./style.css";
import { CategoryScale, Chart, LinearScale, LineController, LineElement, PointElement } from "chart.js";
import type { ModelSpec } from "@flexmoe/model/spec";
import { BACKEND_LABEL, isBackend, memoKey, type BackendMemo, type TfBackend } from "./backend-choice.ts";
import { DrawingPad } from "./pad.ts";
import { Session, type Runtime, type SessionState } from "./session.ts";
import { loadBackendMemo, saveBackendMemo } from "./storage.ts";

Chart.register(LineController, LineElement, PointElement, CategoryScale, LinearScale);

const $ = <T extends HTMLElement = HTMLElement>(id: string): T => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`#${id} missing from index.html`);
  return el as T;
};

const STATE_TEXT: Record<SessionState, string> = {
  connecting: "Connecting…",
  joined: "Joined",
  downloading: "Downloading data",
  preparing: "Preparing",
  waiting: "Waiting for a round",
  training: "Training",
  uploading: "Uploading update",
  paused: "Paused",
  left: "Left",
  disconnected: "Reconnecting…",
  ended: "Stopped",
  error: "Error",
};

/** Screen wake lock while training; released otherwise. Browsers without it simply skip this. */
class WakeLock {
  private sentinel: WakeLockSentinel | null = null;
  async hold(on: boolean): Promise<void> {
    if (on && !this.sentinel && "wakeLock" in navigator && document.visibilityState === "visible") {
      try {
        this.sentinel = await navigator.wakeLock.request("screen");
        this.sentinel.addEventListener("release", () => (this.sentinel = null));
      } catch {
        this.sentinel = null;
      }
    } else if (!on && this.sentinel) {
      const s = this.sentinel;
      this.sentinel = null;
      await s.release().catch(() => {});
    }
  }
}

interface BatteryLike extends EventTarget {
  level: number;
  charging: boolean;
}

function accuracyChart(canvas: HTMLCanvasElement): Chart<"line", number[], string> {
  return new Chart(canvas, {
    type: "line",
    data: { labels: [], datasets: [{ data: [], borderColor: "#1d3557", backgroundColor: "#1d3557" }] },
    options: {
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      scales: { y: { min: 0, max: 100, ticks: { callback: (v) => `${v}%` } }, x: { title: { display: true, text: "round" } } },
    },
  });
}

/** What the link forces: `?backend=` and `?capacity=` (null: choose automatically). */
interface Choices {
  forced: TfBackend | null;
  capacity: number | null;
}

/**
 * The session's `prepare`: load TF.js (its own chunks), put it on the forced, remembered or measured
 * backend, test the device for a capacity, and remember both for this device and model.
 */
async function prepare(spec: ModelSpec, choices: Choices, tested: { done: boolean }): Promise<Runtime> {
  const backendEl = $("backend");
  const why = $("backend-why");
  const remeasure = $<HTMLButtonElement>("remeasure");
  const say = (text: string): void => {
    why.hidden = false;
    why.textContent = text;
  };
  say("Loading TensorFlow.js…");
  const tfjs = await import("./backend.ts");
  const key = memoKey(spec, navigator.userAgent);
  let backend: TfBackend;
  let remembered: BackendMemo | null = null;
  let summary: string;
  if (choices.forced) {
    const broken = await tfjs.useBackend(choices.forced);
    backend = broken === null ? choices.forced : "cpu";
    if (broken !== null) await tfjs.useBackend("cpu");
    summary = broken === null ? `Set by the link (?backend=${choices.forced}).` : `CPU: ${BACKEND_LABEL[choices.forced]} ${broken}.`;
  } else {
    const stored = loadBackendMemo(key)?.memo ?? null;
    if (stored && (await tfjs.useBackend(stored.backend)) === null) {
      remembered = stored;
      backend = stored.backend;
      summary = stored.summary;
    } else {
      const decision = await tfjs.measureBackends(spec, { onMeasuring: (b) => say(`Measuring ${BACKEND_LABEL[b]}…`) });
      backend = decision.backend;
      summary = decision.summary;
    }
  }
  backendEl.textContent = backend;
  backendEl.dataset.backend = backend;
  why.dataset.source = choices.forced ? "forced" : remembered ? "remembered" : "measured";
  say(
    choices.forced
      ? summary
      : `${summary} (${remembered ? `measured on ${new Date(remembered.measuredAt).toLocaleDateString()}` : "measured just now"}).`,
  );
  if (!choices.forced) {
    remeasure.hidden = false;
    remeasure.onclick = () => {
      // The probe removes the backends it did not choose, so measuring again is a fresh page.
      saveBackendMemo(key, null);
      location.reload();
    };
  }

  const test = remembered ? { capacity: remembered.capacity, summary: remembered.capacityTest } : await tfjs.probeDevice(backend);
  const capacity = choices.capacity ?? test.capacity;
  $("capacity-why").textContent =
    choices.capacity !== null ? "Set by the link." : `Chosen from a quick test of this device (${test.summary}); you can change it.`;
  if (!choices.forced && !remembered)
    saveBackendMemo(key, { backend, capacity: test.capacity, capacityTest: test.summary, summary, measuredAt: new Date().toISOString() });
  const capInput = $<HTMLInputElement>("capacity-input");
  capInput.value = String(capacity);
  tested.done = true;
  capInput.disabled = false;
  return { backend, capacity, createTrainer: (s) => new tfjs.MoeTrainer(s) };
}

function start(): void {
  const params = new URLSearchParams(location.search);
  const forcedParam = params.get("backend");
  const asked = Number(params.get("capacity"));
  const choices: Choices = {
    forced: isBackend(forcedParam) ? forcedParam : null,
    capacity: Number.isInteger(asked) && asked >= 1 ? asked : null,
  };
  // The first join carries the last choice this device remembers (usually right, so no rejoin), or a guess.
  const last = choices.forced ? null : loadBackendMemo(null)?.memo;
  const capacity = choices.capacity ?? last?.capacity ?? 2;
  const tested = { done: false };
  $("capacity-why").textContent = "Testing this device…";

  const progress = $<HTMLProgressElement>("progress");
  const accList = $("accuracy");
  const chart = accuracyChart($<HTMLCanvasElement>("acc-chart"));
  const wake = new WakeLock();
  const capInput = $<HTMLInputElement>("capacity-input");
  capInput.value = String(capacity);

  const session = new Session(
    {
      capacity,
      backend: choices.forced ?? last?.backend ?? "cpu",
      ...(params.get("label") ? { label: params.get("label")! } : {}),
      prepare: (spec) => prepare(spec, choices, tested),
    },
    {
      state(s, detail) {
        const el = $("state");
        el.textContent = STATE_TEXT[s] + (detail && s !== "waiting" ? ` (${detail})` : "");
        el.dataset.state = s;
        // Marks for e2e/tests/throttled-join.spec.ts (and anyone's devtools): the first join, the first ready.
        if (s === "waiting" && performance.getEntriesByName("flexmoe:ready").length === 0) performance.mark("flexmoe:ready");
        progress.hidden = s !== "training";
        void wake.hold(s === "training" || s === "uploading");
        if (s === "error" || s === "disconnected" || s === "ended") $("note").textContent = detail ?? "";
        else if (s === "waiting") $("note").textContent = "";
      },
      joined(info) {
        if (performance.getEntriesByName("flexmoe:joined").length === 0) performance.mark("flexmoe:joined");
        $("client").textContent = info.clientId;
        $("capacity").textContent =
          `of ${info.experts} experts${info.capacity !== session.capacity ? ` (capped to ${info.capacity})` : ""}`;
        capInput.max = String(info.experts);
        // Editable once the device test has set it (it would overwrite an earlier edit).
        capInput.disabled = !tested.done;
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
        chart.data.labels!.push(String(round));
        chart.data.datasets[0]!.data.push(acc * 100);
        chart.update();
      },
      closed() {},
    },
  );

  capInput.addEventListener("change", () => {
    const v = Number(capInput.value);
    if (Number.isInteger(v) && v >= 1) session.setCapacity(v);
  });

  // Pause rule: the volunteer's button, or a hidden tab / low battery unless they opted in.
  const pause = $<HTMLButtonElement>("pause");
  const keep = $<HTMLInputElement>("keep-hidden");
  let userPaused = false;
  let battery: BatteryLike | null = null;
  let applied = false;
  const lowBattery = (): boolean => battery !== null && !battery.charging && battery.level < 0.2;
  const applyPause = (): void => {
    const auto = !keep.checked && (document.visibilityState === "hidden" || lowBattery());
    const paused = userPaused || auto;
    pause.textContent = userPaused ? "Resume" : "Pause";
    if (paused === applied) return;
    applied = paused;
    if (auto && !userPaused)
      $("note").textContent = document.visibilityState === "hidden" ? "Paused while this tab is hidden." : "Paused: battery below 20%.";
    void session.setPaused(paused);
  };
  pause.addEventListener("click", () => {
    userPaused = !userPaused;
    applyPause();
  });
  keep.addEventListener("change", applyPause);
  document.addEventListener("visibilitychange", applyPause);
  const nav = navigator as Navigator & { getBattery?: () => Promise<BatteryLike> };
  nav
    .getBattery?.()
    .then((b) => {
      battery = b;
      b.addEventListener("levelchange", applyPause);
      b.addEventListener("chargingchange", applyPause);
      applyPause();
    })
    .catch(() => {});
  applyPause();

  $("leave").addEventListener("click", () => {
    session.leave();
    pause.disabled = true;
    ($("leave") as HTMLButtonElement).disabled = true;
  });

  setUpPad(session);
}

function setUpPad(session: Session): void {
  const preview = $<HTMLCanvasElement>("pad-preview");
  const addBtn = $<HTMLButtonElement>("pad-add");
  const tryBtn = $<HTMLButtonElement>("pad-try");
  const pad = new DrawingPad($<HTMLCanvasElement>("pad"), () => {
    addBtn.disabled = tryBtn.disabled = pad.empty;
    if (!pad.empty) pad.toMnist(preview);
  });
  addBtn.disabled = tryBtn.disabled = true;
  const label = $<HTMLSelectElement>("pad-label");
  for (let d = 0; d <= 9; d++) label.add(new Option(String(d), String(d)));
  const count = $("pad-count");
  const result = $("pad-result");

  addBtn.addEventListener("click", () => {
    const x = pad.toMnist(preview);
    if (!x) return;
    const n = session.addSample(x, Number(label.value));
    count.textContent = `${n} own sample${n === 1 ? "" : "s"}: they join your training data from the next round (they never leave this device).`;
    count.dataset.count = String(n);
    pad.clear();
  });
  tryBtn.addEventListener("click", () => {
    const x = pad.toMnist(preview);
    if (!x) return;
    void session.predict(x).then((p) => {
      result.hidden = false;
      const guess = $("pad-guess");
      if (!p) {
        guess.textContent = "No model yet: wait for the first round to finish.";
        guess.dataset.digit = "";
        $("pad-probs").replaceChildren();
        $("pad-expert").textContent = "";
        return;
      }
      const best = p.probs.indexOf(Math.max(...p.probs));
      guess.textContent = `It looks like a ${best} (${((p.probs[best] ?? 0) * 100).toFixed(0)}%).`;
      guess.dataset.digit = String(best);
      const expert = $("pad-expert");
      expert.textContent = `The gate picked expert ${p.topExpert} (weight ${((p.gate[p.topExpert] ?? 0) * 100).toFixed(0)}%).`;
      expert.dataset.expert = String(p.topExpert);
      $("pad-probs").replaceChildren(
        ...p.probs.map((v, d) => {
          const li = document.createElement("li");
          if (d === best) li.className = "top";
          const m = document.createElement("meter");
          m.min = 0;
          m.max = 1;
          m.value = v;
          const digit = document.createElement("span");
          digit.textContent = String(d);
          const val = document.createElement("span");
          val.textContent = `${(v * 100).toFixed(1)}%`;
          li.append(digit, m, val);
          return li;
        }),
      );
    });
  });
  $("pad-clear").addEventListener("click", () => {
    pad.clear();
    preview.getContext("2d")?.clearRect(0, 0, preview.width, preview.height);
  });
}

try {
  start();
} catch (e) {
  const el = document.getElementById("state");
  if (el) {
    el.textContent = `Error (${(e as Error).message})`;
    el.dataset.state = "error";
  }
}
