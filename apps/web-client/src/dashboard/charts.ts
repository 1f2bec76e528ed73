/** The dashboard's three Chart.js charts, created once and updated in place from each state push. */
import {
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  Legend,
  LinearScale,
  LineController,
  LineElement,
  PointElement,
  Tooltip,
} from "chart.js";
import type { DashboardState } from "@flexmoe/core";

Chart.register(LineController, BarController, LineElement, BarElement, PointElement, CategoryScale, LinearScale, Legend, Tooltip);

const NAVY = "#1d3557";
const BLUE = "#457b9d";
const RED = "#e63946";
const TEAL = "#2a9d8f";

const base = {
  responsive: true,
  maintainAspectRatio: false,
  // No animation: a pushed state is drawn at once (and screenshots are stable).
  animation: false as const,
  plugins: { legend: { position: "bottom" as const } },
};

export class DashboardCharts {
  private readonly accuracy: Chart<"line", (number | null)[], string>;
  private readonly cv: Chart<"line", number[], string>;
  private readonly load: Chart<"bar", number[], string>;

  constructor(private readonly els: { accuracy: HTMLCanvasElement; cv: HTMLCanvasElement; load: HTMLCanvasElement }) {
    this.accuracy = new Chart(els.accuracy, {
      type: "line",
      data: {
        labels: [],
        datasets: [
          { label: "accuracy", data: [], borderColor: NAVY, backgroundColor: NAVY, yAxisID: "acc", spanGaps: true },
          { label: "loss", data: [], borderColor: RED, backgroundColor: RED, yAxisID: "loss", spanGaps: true },
        ],
      },
      options: {
        ...base,
        scales: {
          x: { title: { display: true, text: "round" } },
          acc: { position: "left", min: 0, max: 1, title: { display: true, text: "accuracy" } },
          loss: { position: "right", min: 0, grid: { drawOnChartArea: false }, title: { display: true, text: "loss" } },
        },
      },
    });
    this.cv = new Chart(els.cv, {
      type: "line",
      data: {
        labels: [],
        datasets: [
          { label: "holders", data: [], borderColor: NAVY, backgroundColor: NAVY },
          { label: "routed samples", data: [], borderColor: TEAL, backgroundColor: TEAL },
        ],
      },
      options: { ...base, scales: { x: { title: { display: true, text: "round" } }, y: { min: 0, title: { display: true, text: "CV" } } } },
    });
    this.load = new Chart(els.load, {
      type: "bar",
      data: {
        labels: [],
        datasets: [
          { label: "holders", data: [], backgroundColor: NAVY, yAxisID: "holders" },
          { label: "routed samples", data: [], backgroundColor: BLUE, yAxisID: "routed" },
        ],
      },
      options: {
        ...base,
        scales: {
          x: { title: { display: true, text: "expert" } },
          holders: { position: "left", min: 0, ticks: { precision: 0 }, title: { display: true, text: "holders" } },
          routed: { position: "right", min: 0, grid: { drawOnChartArea: false }, title: { display: true, text: "samples" } },
        },
      },
    });
  }

  update(s: DashboardState): void {
    const labels = s.history.map((h) => String(h.round));
    const strategies = [...new Set(s.history.map((h) => h.strategy))];

    this.accuracy.data.labels = labels;
    this.accuracy.data.datasets[0]!.data = s.history.map((h) => h.accuracy);
    this.accuracy.data.datasets[1]!.data = s.history.map((h) => h.loss);
    this.accuracy.update();

    this.cv.data.labels = labels;
    const tag = strategies.length > 0 ? ` (${strategies.join(" → ")})` : ` (${s.strategy})`;
    this.cv.data.datasets[0]!.label = `holders${tag}`;
    this.cv.data.datasets[0]!.data = s.history.map((h) => h.cv);
    this.cv.data.datasets[1]!.label = `routed samples${tag}`;
    this.cv.data.datasets[1]!.data = s.history.map((h) => h.cvRouted);
    this.cv.update();

    const last = s.history[s.history.length - 1];
    this.load.data.labels = Array.from({ length: s.experts }, (_, e) => `E${e}`);
    this.load.data.datasets[0]!.data = last ? [...last.load] : new Array<number>(s.experts).fill(0);
    this.load.data.datasets[1]!.data = last ? [...last.routed] : new Array<number>(s.experts).fill(0);
    this.load.update();

    this.els.accuracy.dataset.points = String(s.history.length);
    this.els.cv.dataset.points = String(s.history.length);
    this.els.load.dataset.points = String(last ? s.experts : 0);
  }
}
