/**
 * Assignment solver bench: FLEX-MoE's exact load-bounded solve vs greedy top-k (the floor: reading Q once)
 * and vs HiGHS (WASM LP; the problem is totally unimodular, so the LP optimum is the integer optimum).
 * The optimality gap is checked two ways: against HiGHS where it runs, and everywhere with a certificate
 * from the exchange graph (no improving cycle of single-client moves between experts means optimal).
 */
import { assign, computeBounds, createRng, type Assignment, type AssignmentProblem } from "@flexmoe/core";
import { timeInterleaved, type BenchContext } from "./common.ts";
import { ratio, relativeGap, sig } from "./stats.ts";

export interface SolverRow {
  clients: number;
  experts: number;
  /** Median ms of the exact flex solve. */
  flexMs: number;
  /** Median ms of greedy top-k on the same instance. */
  greedyMs: number;
  /** flexMs / greedyMs. */
  ratio: number | null;
  /** HiGHS LP solve ms (model passed as a sparse matrix; not the parse), null where not run. */
  highsMs: number | null;
  /** highsMs / flexMs. */
  highsOverFlex: number | null;
  /** Relative gap to the HiGHS optimum (0 = optimal); from the certificate where HiGHS did not run. */
  gap: number | null;
  /** Whether the exchange-graph certificate proves flex optimal. */
  certified: boolean;
  /** Loads within the bounds and every client holding exactly k_c distinct experts. */
  feasible: boolean;
  /** Objective of the greedy (unconstrained) solution over flex's: the price of balance. */
  greedyObjectiveOverFlex: number | null;
  reps: number;
}

export interface SolverInstance {
  clients: number;
  experts: number;
  highs: boolean;
}

export function solverInstances(quick: boolean): SolverInstance[] {
  return [
    { clients: 1_000, experts: 8, highs: true },
    { clients: 10_000, experts: 16, highs: true },
    { clients: 100_000, experts: 64, highs: !quick },
  ];
}

/**
 * A problem like the coordinator's after some rounds: fitness an EMA of accuracies in (0, 1), with a
 * per-expert skew (some experts are better on average, so greedy piles onto them) and capacities 1-4.
 */
export function makeProblem(C: number, E: number, seed: number): AssignmentProblem {
  const rng = createRng(seed);
  const skew = Float64Array.from({ length: E }, () => 0.3 * rng.next());
  const fitness = new Float64Array(C * E);
  for (let c = 0; c < C; c++) for (let e = 0; e < E; e++) fitness[c * E + e] = Math.min(1, 0.4 * rng.next() + (skew[e] as number) + 0.2);
  const capacity = Int32Array.from({ length: C }, () => 1 + rng.int(Math.min(4, E)));
  return { clients: C, experts: E, fitness, capacity };
}

/** Loads within [L, U] and each client holding exactly k_c distinct experts in range. */
export function isFeasible(p: AssignmentProblem, a: Assignment): boolean {
  const b = computeBounds(p.capacity, p.experts, { slack: p.slack ?? 0, ...(p.deficit ? { deficit: p.deficit } : {}) });
  const load = new Array<number>(p.experts).fill(0);
  for (let c = 0; c < p.clients; c++) {
    const list = a.experts[c] ?? [];
    if (list.length !== p.capacity[c] || new Set(list).size !== list.length) return false;
    for (const e of list) {
      if (!(e >= 0 && e < p.experts)) return false;
      load[e] = (load[e] ?? 0) + 1;
    }
  }
  return load.every((n, e) => n >= (b.lower[e] as number) && n <= (b.upper[e] as number));
}

/**
 * Optimality certificate for slack 0 (loads fixed): the assignment is optimal iff the exchange graph on
 * experts, with gain(a -> b) = max over clients holding a but not b of Q(c,b) - Q(c,a), has no cycle of
 * positive total gain (min-cost-flow optimality: no negative residual cycle; paths through client nodes
 * contract to these arcs). Returns the best cycle gain found (0 when optimal) via Floyd-Warshall.
 */
export function improvingCycleGain(p: AssignmentProblem, a: Assignment): number {
  const E = p.experts;
  const NEG = -Infinity;
  const g = new Float64Array(E * E).fill(NEG);
  const q = p.fitness;
  const held = new Uint8Array(E);
  for (let c = 0; c < p.clients; c++) {
    const list = a.experts[c] ?? [];
    for (const e of list) held[e] = 1;
    const row = c * E;
    for (const x of list) {
      const qx = q[row + x] as number;
      for (let y = 0; y < E; y++) {
        if (held[y]) continue;
        const d = (q[row + y] as number) - qx;
        if (d > (g[x * E + y] as number)) g[x * E + y] = d;
      }
    }
    for (const e of list) held[e] = 0;
  }
  // Longest paths (max gain); a positive diagonal entry is an improving cycle.
  for (let k = 0; k < E; k++) {
    for (let i = 0; i < E; i++) {
      const ik = g[i * E + k] as number;
      if (ik === NEG) continue;
      for (let j = 0; j < E; j++) {
        const v = ik + (g[k * E + j] as number);
        if (v > (g[i * E + j] as number)) g[i * E + j] = v;
      }
    }
    // Stop early once a positive cycle exists (values would otherwise grow without bound).
    for (let i = 0; i < E; i++) if ((g[i * E + i] as number) > 1e-9) return g[i * E + i] as number;
  }
  return 0;
}

interface HighsModelLike {
  options: { set(values: Record<string, unknown>): unknown };
  passModel(m: unknown): unknown;
  run(): { modelStatus: unknown };
  getObjectiveValue(): number;
  getModelStatus(): unknown;
}
interface HighsLike {
  constants: { objectiveSense: { maximize: unknown } };
  infinity: number;
  withModel<R>(op: (m: HighsModelLike) => R): R;
}

let highsPromise: Promise<HighsLike> | undefined;
async function loadHighs(): Promise<HighsLike> {
  highsPromise ??= import("highs").then(async (mod) => {
    const loader = (mod as unknown as { default: () => Promise<unknown> }).default;
    return (await loader()) as HighsLike;
  });
  return highsPromise;
}

/** The LP as HiGHS sees it: x_ce in [0,1], rows sum_e x_ce = k_c then L_e <= sum_c x_ce <= U_e (CSC). */
export async function solveWithHighs(
  p: AssignmentProblem,
  timeLimitSec: number,
): Promise<{ ms: number; objective: number; status: string }> {
  const highs = await loadHighs();
  const C = p.clients;
  const E = p.experts;
  const b = computeBounds(p.capacity, E, { slack: p.slack ?? 0, ...(p.deficit ? { deficit: p.deficit } : {}) });
  const n = C * E;
  const starts = new Int32Array(n + 1);
  const indices = new Int32Array(2 * n);
  const values = new Float64Array(2 * n).fill(1);
  for (let j = 0; j < n; j++) {
    starts[j] = 2 * j;
    indices[2 * j] = Math.floor(j / E);
    indices[2 * j + 1] = C + (j % E);
  }
  starts[n] = 2 * n;
  const rowLower = new Float64Array(C + E);
  const rowUpper = new Float64Array(C + E);
  for (let c = 0; c < C; c++) rowLower[c] = rowUpper[c] = p.capacity[c] as number;
  for (let e = 0; e < E; e++) {
    rowLower[C + e] = b.lower[e] as number;
    rowUpper[C + e] = b.upper[e] as number;
  }
  const model = {
    numCols: n,
    numRows: C + E,
    sense: highs.constants.objectiveSense.maximize,
    colCost: Float64Array.from(p.fitness),
    colLower: new Float64Array(n),
    colUpper: new Float64Array(n).fill(1),
    rowLower,
    rowUpper,
    matrix: { format: "csc", numRows: C + E, numCols: n, starts, indices, values },
  };
  return highs.withModel((m) => {
    m.options.set({ output_flag: false, time_limit: timeLimitSec });
    m.passModel(model);
    const t0 = performance.now();
    const r = m.run();
    const ms = performance.now() - t0;
    return { ms, objective: m.getObjectiveValue(), status: String(r.modelStatus) };
  });
}

export async function benchSolver(ctx: BenchContext): Promise<SolverRow[]> {
  const rows: SolverRow[] = [];
  for (const inst of solverInstances(ctx.quick)) {
    const { clients: C, experts: E } = inst;
    ctx.progress(`solver ${C} x ${E}: flex vs greedy`);
    const p = makeProblem(C, E, 1000 + C + E);
    const reps = C >= 100_000 ? (ctx.quick ? 3 : 9) : ctx.quick ? 9 : 21;
    let flexA: Assignment | undefined;
    let greedyA: Assignment | undefined;
    const [flexMs, greedyMs] = timeInterleaved(
      [() => void (flexA = assign(p, "flex")), () => void (greedyA = assign(p, "greedy"))],
      reps,
    ) as [number, number];
    const fa = flexA as Assignment;
    const feasible = isFeasible(p, fa);
    const cycle = improvingCycleGain(p, fa);
    let highsMs: number | null = null;
    let gap: number | null = cycle > 0 ? cycle / Math.max(1, Math.abs(fa.objective)) : 0;
    if (inst.highs) {
      ctx.progress(`solver ${C} x ${E}: HiGHS`);
      try {
        const h = await solveWithHighs(p, ctx.quick ? 30 : 60);
        if (/optimal/i.test(h.status) || h.status === "7") {
          highsMs = h.ms;
          gap = relativeGap(h.objective, fa.objective, 1e-7);
        } else {
          ctx.progress(`solver ${C} x ${E}: HiGHS ended with status ${h.status}`);
        }
      } catch (e) {
        ctx.progress(`solver ${C} x ${E}: HiGHS failed: ${(e as Error).message}`);
      }
    }
    rows.push({
      clients: C,
      experts: E,
      flexMs: sig(flexMs),
      greedyMs: sig(greedyMs),
      ratio: sig(ratio(flexMs, greedyMs) ?? Number.NaN),
      highsMs: highsMs === null ? null : sig(highsMs),
      highsOverFlex: highsMs === null ? null : sig(highsMs / flexMs),
      gap,
      certified: cycle === 0,
      feasible,
      greedyObjectiveOverFlex: greedyA ? sig(greedyA.objective / fa.objective) : null,
      reps,
    });
  }
  return rows;
}
