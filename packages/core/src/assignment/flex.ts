/**
 * FLEX-MoE assignment (paper section 3.2), solved exactly:
 *
 *   maximize sum w[c][e] x[c][e]  s.t.  sum_e x[c][e] = k_c,  L_e <= sum_c x[c][e] <= U_e,  x binary.
 *
 * Method: primal-dual successive shortest paths on the small "exchange graph" instead of the C+E+2 node flow
 * network. Experts carry potentials pi_e and every client holds a top-k_c set of v[c][e] = w[c][e] + pi_e, so
 * no client can improve by swapping. Moving one client from expert a to b is an arc a->b of reduced cost
 * v[c][a] - v[c][b] >= 0; a sink T with arcs e->T (flow f_e < U_e) and T->e (f_e > L_e) carries the bounds.
 * Over-full experts have excess n_e - f_e > 0, under-full ones a deficit. Each round runs Dijkstra over the
 * E+1 nodes, adds the distances to the potentials (reduced costs stay >= 0) and moves units along tight
 * paths. With no excess left the loads are within bounds and no residual arc has negative reduced cost:
 * complementary slackness, so the assignment is optimal (the constraint matrix is totally unimodular, so
 * this LP optimum is the integer one). Excess that reaches no deficit proves infeasibility.
 *
 * Scale (C huge, E small): arc a->b needs the cheapest client holding a but not b. Each pair keeps a heap of
 * only its cheapest candidates: every candidate with key (w[c][a] - w[c][b], c) <= lambda_ab is in it, the
 * rest lie above, so lambda_ab + pi_a - pi_b bounds the arc from below. Dijkstra uses that bound where the
 * heap runs dry; a shortest path through such an arc triggers a refill of the pairs (a, *) from the holders
 * of a, and the search repeats (distances computed with lower bounds are still valid potential updates).
 * Potentials start from the optimum of a subsample of the clients (recursively), so few clients move.
 *
 * Arithmetic: comparisons of fitness differences are exact (integer fitness is solved exactly); the one
 * rounding allowance, 1e-11 times the largest |fitness| or |potential|, covers the potential-based first cut,
 * so with real-valued fitness the optimum is exact up to that relative tolerance.
 *
 * Tie-breaking (deterministic, same input -> same output): a client tied at its k-th place takes the tied
 * experts furthest behind their fair share so far (lower id on equal footing); repairs move, among equally
 * cheap clients, the lowest client id, and Dijkstra prefers the lowest node index.
 */
import { defineStrategy } from "./strategy.ts";
import { checkBounds, boundsFor } from "./bounds.ts";
import { selectTopK, toAssignment } from "./common.ts";
import { AssignmentError } from "./types.ts";
import type { Assignment, AssignmentProblem, Bounds } from "./types.ts";
import { prepareProblem } from "./validate.ts";

export interface FlexOptions {
  /** Explicit load bounds instead of computeBounds(capacity, E, {slack, deficit}). */
  bounds?: Bounds;
}

export function solveFlex(problem: AssignmentProblem, opts: FlexOptions = {}): Assignment {
  const p = prepareProblem(problem);
  const bounds = opts.bounds ?? boundsFor(p.C, p.E, p.F, p.slack, p.deficit);
  const { L, U } = checkBounds(bounds, p.C, p.E, p.F);
  const res = flexCore(p.C, p.E, p.w, p.cap, L, U);
  if (res === null) {
    throw new AssignmentError("INFEASIBLE", "no assignment gives every client its k_c distinct experts within the load bounds");
  }
  return toAssignment(p.w, p.C, p.E, res.hold, { lower: Array.from(bounds.lower), upper: Array.from(bounds.upper) });
}

/** Result of the core solver: the C*E hold matrix and the final potentials (E experts, then T). */
export interface FlexCoreResult {
  hold: Uint8Array;
  pi: Float64Array;
  /** Repair statistics, for diagnostics. */
  stats: { remaining: number; moves: number; rounds: number; refills: number };
}

/** Knobs that change the solver's speed, never its result; tests shrink them to reach every path on tiny inputs. */
export interface FlexTuning {
  /** From this many clients on, potentials start from a subsample's optimum. */
  sampleMinClients: number;
  /** The subsample takes every sampleStride-th client. */
  sampleStride: number;
  /** Candidates per pair at its first refill; doubles with every refill of that pair. */
  firstFill: number;
  /** Clients (smallest margins first) whose cheap arcs are loaded before the repair: at least startClients, */
  startClients: number;
  /** ... and startPerUnit per unit of initial excess. */
  startPerUnit: number;
}

export const DEFAULT_FLEX_TUNING: Readonly<FlexTuning> = {
  sampleMinClients: 512,
  sampleStride: 4,
  firstFill: 16,
  startClients: 256,
  startPerUnit: 8,
};

/**
 * Exact solver on validated typed arrays (U_e <= C, sum L <= F <= sum U). `pi0` (length E+1) seeds the
 * potentials; without it large instances derive them from a subsample. Returns null when infeasible.
 */
export function flexCore(
  C: number,
  E: number,
  w: Float64Array,
  cap: Int32Array,
  L: Int32Array,
  U: Int32Array,
  pi0: Float64Array | null = null,
  tuning: Readonly<FlexTuning> = DEFAULT_FLEX_TUNING,
): FlexCoreResult | null {
  const V = E + 1;
  const T = E;
  const pi = new Float64Array(V);
  if (pi0 !== null) pi.set(pi0);
  else if (C >= tuning.sampleMinClients && tuning.sampleStride > 1) {
    const sub = samplePotentials(C, E, w, cap, L, U, tuning);
    if (sub !== null) pi.set(sub);
  }

  // Start: each client's top-k of w + pi. A client tied at its k-th place (equal fitness, e.g. the optimistic
  // initial Q) takes the tied experts that are furthest behind their fair share so far, so ties cost no repair.
  let F = 0;
  for (let c = 0; c < C; c++) F += cap[c] as number;
  const hold = new Uint8Array(C * E);
  const margin = new Float64Array(C);
  const bi = new Int32Array(E + 1);
  const bv = new Float64Array(E + 1);
  const shift = pi.subarray(0, E);
  const load = new Int32Array(E);
  const share = new Float64Array(E);
  for (let e = 0; e < E; e++) share[e] = ((L[e] as number) + (U[e] as number)) / (2 * F);
  const tied = new Int32Array(E);
  let slots = 0;
  for (let c = 0; c < C; c++) {
    const k = cap[c] as number;
    const row = c * E;
    let m = selectTopK(w, shift, c, E, k, hold, bi, bv);
    if (k < E) {
      const kth = (k <= E - k ? bv[k - 1] : bv[E - k]) as number;
      const tol = TIE_TOL * (1 + Math.abs(kth));
      if (m <= tol) {
        m = 0;
        hold.fill(0, row, row + E);
        let above = 0;
        let nt = 0;
        for (let e = 0; e < E; e++) {
          const v = (w[row + e] as number) + (shift[e] as number);
          if (v > kth + tol) {
            hold[row + e] = 1;
            load[e] = (load[e] as number) + 1;
            above++;
          } else if (v >= kth - tol) tied[nt++] = e;
        }
        for (let j = 0; j < k - above; j++) {
          let best = j;
          let bestP = Infinity;
          for (let i = j; i < nt; i++) {
            const e = tied[i] as number;
            const pressure = (load[e] as number) - (share[e] as number) * slots;
            if (pressure < bestP) {
              bestP = pressure;
              best = i;
            }
          }
          const e = tied[best] as number;
          tied[best] = tied[j] as number;
          tied[j] = e;
          hold[row + e] = 1;
          load[e] = (load[e] as number) + 1;
        }
        margin[c] = 0;
        slots += k;
        continue;
      }
    }
    margin[c] = m;
    if (k <= E - k) {
      // selectTopK left the chosen experts in bi (its large-k branch leaves the others there).
      for (let i = 0; i < k; i++) {
        const e = bi[i] as number;
        load[e] = (load[e] as number) + 1;
      }
    } else {
      for (let e = 0; e < E; e++) load[e] = (load[e] as number) + (hold[row + e] as number);
    }
    slots += k;
  }

  // Flows f_e on the arcs e->T. No T arc may start with a negative reduced cost: pi_e > pi_T (arc T->e costs
  // pi_T - pi_e) forces f_e = L_e, pi_e < pi_T (arc e->T) forces f_e = U_e. pi_T is the candidate with the
  // least total imbalance.
  const sortedPi = Array.from(shift).sort((a, b) => a - b);
  const candidates: number[] = [(sortedPi[0] as number) - 1];
  for (let i = 0; i < E; i++) {
    const x = sortedPi[i] as number;
    const next = sortedPi[i + 1];
    candidates.push(x, next === undefined ? x + 1 : (x + next) / 2);
  }
  const flowFor = (e: number, t: number): number => {
    const pe = shift[e] as number;
    if (pe > t) return L[e] as number;
    if (pe < t) return U[e] as number;
    return Math.min(U[e] as number, Math.max(L[e] as number, load[e] as number));
  };
  let bestT = 0;
  let bestImb = Infinity;
  for (const t of candidates) {
    let imb = 0;
    let sumF = 0;
    for (let e = 0; e < E; e++) {
      const fe = flowFor(e, t);
      imb += Math.abs((load[e] as number) - fe);
      sumF += fe;
    }
    imb += Math.abs(sumF - F);
    if (imb < bestImb) {
      bestImb = imb;
      bestT = t;
    }
  }
  pi[T] = bestT;
  const f = new Int32Array(E);
  const excess = new Int32Array(V);
  let sumF = 0;
  let remaining = 0;
  for (let e = 0; e < E; e++) {
    const fe = flowFor(e, bestT);
    const n = load[e] as number;
    f[e] = fe;
    excess[e] = n - fe;
    sumF += fe;
    if (n > fe) remaining += n - fe;
  }
  excess[T] = sumF - F;
  if (sumF > F) remaining += sumF - F;
  const stats = { remaining, moves: 0, rounds: 0, refills: 0 };
  if (remaining === 0) return { hold, pi, stats };

  const repair = new Repair(C, E, w, hold, load, f, excess, L, U, pi, tuning.firstFill);
  repair.initialFill(margin, Math.max(1, tuning.startClients, tuning.startPerUnit * remaining));
  const ok = repair.run(remaining);
  stats.moves = repair.moves;
  stats.rounds = repair.rounds;
  stats.refills = repair.refills;
  return ok ? { hold, pi, stats } : null;
}

/** Potentials from the exact optimum of every sampleStride-th client, with proportionally scaled bounds. */
function samplePotentials(
  C: number,
  E: number,
  w: Float64Array,
  cap: Int32Array,
  L: Int32Array,
  U: Int32Array,
  tuning: Readonly<FlexTuning>,
): Float64Array | null {
  const stride = tuning.sampleStride;
  const Cs = Math.ceil(C / stride);
  const ws = new Float64Array(Cs * E);
  const caps = new Int32Array(Cs);
  let F = 0;
  let Fs = 0;
  for (let c = 0; c < C; c++) F += cap[c] as number;
  for (let s = 0; s < Cs; s++) {
    // One client per block of `stride`, at a hashed offset: a fixed stride would alias with periodic
    // client orders (e.g. clusters assigned round-robin).
    const c = Math.min(C - 1, s * stride + (hash32(s) % stride));
    ws.set(w.subarray(c * E, c * E + E), s * E);
    caps[s] = cap[c] as number;
    Fs += cap[c] as number;
  }
  const ratio = Fs / F;
  const Ls = new Int32Array(E);
  const Us = new Int32Array(E);
  let sumL = 0;
  let sumU = 0;
  for (let e = 0; e < E; e++) {
    Ls[e] = Math.min(Cs, Math.floor((L[e] as number) * ratio));
    Us[e] = Math.max(Ls[e] as number, Math.min(Cs, Math.ceil((U[e] as number) * ratio)));
    sumL += Ls[e] as number;
    sumU += Us[e] as number;
  }
  if (sumL > Fs || sumU < Fs) return null;
  const res = flexCore(Cs, E, ws, caps, Ls, Us, null, tuning);
  return res === null ? null : res.pi;
}

const NO_CLIENT = 0x7fffffff;
// Start values this close (relative) count as tied; any choice among them is a top-k up to rounding.
const TIE_TOL = 1e-12;

/** Deterministic 32-bit integer hash (lowbias32). */
function hash32(x: number): number {
  let h = x >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d);
  h ^= h >>> 15;
  h = Math.imul(h, 0x846ca68b);
  h ^= h >>> 16;
  return h >>> 0;
}

/** (k1, c1) < (k2, c2) lexicographically. */
const less = (k1: number, c1: number, k2: number, c2: number): boolean => k1 < k2 || (k1 === k2 && c1 < c2);

/** Min-heap sift-down of slot i0 in the heap at K/I[base .. base+n). */
function siftDownMin(K: Float64Array, I: Int32Array, base: number, i0: number, n: number): void {
  const key = K[base + i0] as number;
  const id = I[base + i0] as number;
  let i = i0;
  for (;;) {
    const l = 2 * i + 1;
    if (l >= n) break;
    let m = l;
    if (l + 1 < n && less(K[base + l + 1] as number, I[base + l + 1] as number, K[base + l] as number, I[base + l] as number)) m = l + 1;
    const mk = K[base + m] as number;
    const mi = I[base + m] as number;
    if (!less(mk, mi, key, id)) break;
    K[base + i] = mk;
    I[base + i] = mi;
    i = m;
  }
  K[base + i] = key;
  I[base + i] = id;
}

/**
 * Bounded max-heap at K/I[base ..) of size n: offers (key, id) keeping the `limit` smallest; returns the new
 * size. Used to pick the next candidates of a pair.
 */
function offerBounded(K: Float64Array, I: Int32Array, base: number, n: number, limit: number, key: number, id: number): number {
  let i: number;
  if (n < limit) {
    i = n++;
    while (i > 0) {
      const q = (i - 1) >> 1;
      const qk = K[base + q] as number;
      const qi = I[base + q] as number;
      if (!less(qk, qi, key, id)) break;
      K[base + i] = qk;
      I[base + i] = qi;
      i = q;
    }
  } else {
    if (!less(key, id, K[base] as number, I[base] as number)) return n;
    i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      let m = l;
      if (l + 1 < n && less(K[base + l] as number, I[base + l] as number, K[base + l + 1] as number, I[base + l + 1] as number)) m = l + 1;
      const mk = K[base + m] as number;
      const mi = I[base + m] as number;
      if (!less(key, id, mk, mi)) break;
      K[base + i] = mk;
      I[base + i] = mi;
      i = m;
    }
  }
  K[base + i] = key;
  I[base + i] = id;
  return n;
}

/** The repair phase: successive shortest paths on the exchange graph (see the file comment). */
class Repair {
  moves = 0;
  rounds = 0;
  refills = 0;
  private readonly V: number;
  private readonly P: number;
  /** Rounding allowance for comparing keys with the potential-based first cut. */
  private readonly tol: number;
  // Pair heaps (index a*E+b) live in one pool: candidates (key = w[c][a] - w[c][b], client c), min-ordered
  // by (key, c), at pk/pc[off[p] .. off[p]+hs[p]) with room for room[p].
  private pk: Float64Array;
  private pc: Int32Array;
  private poolTop = 0;
  private readonly off: Int32Array;
  private readonly room: Int32Array;
  private readonly hs: Int32Array;
  // Every candidate with (key, c) <= (lamK, lamC) is in its heap; lamK = +Infinity: all of them are.
  private readonly lamK: Float64Array;
  private readonly lamC: Int32Array;
  private readonly fill: Int32Array;
  // Per pair, independent of the potentials: the arc's raw cost (the valid top key, or lamK with runc = 1
  // when the heap cannot tell), recomputed when dirty.
  private readonly raw: Float64Array;
  private readonly runc: Uint8Array;
  private readonly dirty: Uint8Array;
  private readonly refilled: Int32Array;
  // Refill scratch.
  private rK = new Float64Array(0);
  private rI = new Int32Array(0);
  private readonly rAct: Int32Array;
  private readonly rBase: Int32Array;
  private readonly rLimit: Int32Array;
  private readonly rSize: Int32Array;
  private readonly rOver: Uint8Array;
  private readonly rCutK: Float64Array;
  private readonly rCutC: Int32Array;
  /** Per active target: the largest kept key once its scratch heap is full (+Infinity before). */
  private readonly rHiK: Float64Array;
  // Clients holding each expert, built at the first refill (stale ids are dropped while scanning).
  private holders: Int32Array[] | null = null;
  private readonly hn: Int32Array;
  private readonly stamp: Int32Array;
  private stampNow = 0;
  // Dijkstra scratch.
  private readonly dist: Float64Array;
  private readonly done: Uint8Array;
  private readonly par: Int32Array;
  private readonly parUnc: Uint8Array;
  private readonly parKey: Float64Array;
  private readonly settled: Int32Array;

  constructor(
    private readonly C: number,
    private readonly E: number,
    private readonly w: Float64Array,
    private readonly hold: Uint8Array,
    private readonly load: Int32Array,
    private readonly f: Int32Array,
    private readonly excess: Int32Array,
    private readonly L: Int32Array,
    private readonly U: Int32Array,
    private readonly pi: Float64Array,
    firstFill: number,
  ) {
    const P = E * E;
    const V = E + 1;
    this.V = V;
    this.P = P;
    let scale = 1;
    for (let i = 0; i < w.length; i++) scale = Math.max(scale, Math.abs(w[i] as number));
    for (let v = 0; v < V; v++) scale = Math.max(scale, Math.abs(pi[v] as number));
    this.tol = 1e-11 * scale;
    this.pk = new Float64Array(P * 4 + 1024);
    this.pc = new Int32Array(P * 4 + 1024);
    this.off = new Int32Array(P);
    this.room = new Int32Array(P);
    this.hs = new Int32Array(P);
    this.lamK = new Float64Array(P);
    this.lamC = new Int32Array(P);
    this.fill = new Int32Array(P).fill(Math.max(1, firstFill));
    this.raw = new Float64Array(P);
    this.runc = new Uint8Array(P);
    this.dirty = new Uint8Array(P).fill(1);
    this.refilled = new Int32Array(E).fill(-1);
    this.rAct = new Int32Array(E);
    this.rBase = new Int32Array(E);
    this.rLimit = new Int32Array(E);
    this.rSize = new Int32Array(E);
    this.rOver = new Uint8Array(E);
    this.rCutK = new Float64Array(E);
    this.rCutC = new Int32Array(E);
    this.rHiK = new Float64Array(E);
    this.hn = new Int32Array(E);
    this.stamp = new Int32Array(C);
    this.dist = new Float64Array(V);
    this.done = new Uint8Array(V);
    this.par = new Int32Array(V);
    this.parUnc = new Uint8Array(V);
    this.parKey = new Float64Array(V);
    this.settled = new Int32Array(V);
  }

  /** Makes room for `size` entries in pair p's heap (moving it to the end of the pool when full). */
  private ensure(p: number, size: number): void {
    const have = this.room[p] as number;
    if (have >= size) return;
    const want = Math.max(4, size, 2 * have);
    if (this.poolTop + want > this.pk.length) {
      const len = Math.max(2 * this.pk.length, this.poolTop + want);
      const nk = new Float64Array(len);
      const nc = new Int32Array(len);
      nk.set(this.pk.subarray(0, this.poolTop));
      nc.set(this.pc.subarray(0, this.poolTop));
      this.pk = nk;
      this.pc = nc;
    }
    const from = this.off[p] as number;
    const n = this.hs[p] as number;
    this.pk.copyWithin(this.poolTop, from, from + n);
    this.pc.copyWithin(this.poolTop, from, from + n);
    this.off[p] = this.poolTop;
    this.room[p] = want;
    this.poolTop += want;
  }

  /**
   * First candidates, from about `want` clients with the smallest margins (where repairs happen). With theta
   * the want-th smallest margin, the cut is lambda_ab = theta + pi_b - pi_a - tol: any candidate below it has a
   * margin below theta - tol/2 whatever the rounding, so it was offered. Clients tied at theta (integer
   * fitness) fill up to `want` and add entries just above the cut, which refresh() accepts within 2 tol.
   */
  initialFill(margin: Float64Array, want: number): void {
    const { C, E, P, w, hold, pi } = this;
    const theta = want >= C ? Infinity : kthSmallest(margin, want);
    const tol = this.tol;
    const offered = new Int32Array(P);
    const upper = new Float64Array(P);
    for (let a = 0; a < E; a++) {
      for (let b = 0; b < E; b++) {
        const p = a * E + b;
        const at = theta + (pi[b] as number) - (pi[a] as number);
        this.lamK[p] = at - tol;
        this.lamC[p] = NO_CLIENT;
        upper[p] = at + tol;
      }
    }
    const sure = theta - tol / 2;
    const loose = theta + tol;
    let extra = want;
    for (let c = 0; c < C; c++) {
      const mc = margin[c] as number;
      if (!(mc < sure)) {
        if (!(mc <= loose) || extra <= 0) continue;
      }
      extra--;
      const row = c * E;
      for (let a = 0; a < E; a++) {
        if (hold[row + a] !== 1) continue;
        const wa = w[row + a] as number;
        for (let b = 0; b < E; b++) {
          if (hold[row + b] === 1) continue;
          const p = a * E + b;
          const key = wa - (w[row + b] as number);
          if (!(key <= (upper[p] as number))) continue;
          offered[p] = (offered[p] as number) + 1;
          const limit = this.fill[p] as number;
          this.ensure(p, limit);
          this.hs[p] = offerBounded(this.pk, this.pc, this.off[p] as number, this.hs[p] as number, limit, key, c);
        }
      }
    }
    for (let p = 0; p < P; p++) {
      const n = this.hs[p] as number;
      if (n === 0) continue;
      const base = this.off[p] as number;
      const topK = this.pk[base] as number;
      const topC = this.pc[base] as number;
      // Overflow: everything dropped lies above the largest kept candidate (the max-heap root).
      if ((offered[p] as number) > n && less(topK, topC, this.lamK[p] as number, this.lamC[p] as number)) {
        this.lamK[p] = topK;
        this.lamC[p] = topC;
      }
      for (let i = (n >> 1) - 1; i >= 0; i--) siftDownMin(this.pk, this.pc, base, i, n);
    }
  }

  private push(p: number, key: number, c: number): void {
    const n = this.hs[p] as number;
    this.ensure(p, n + 1);
    const K = this.pk;
    const I = this.pc;
    const base = this.off[p] as number;
    let i = n;
    while (i > 0) {
      const q = (i - 1) >> 1;
      const qk = K[base + q] as number;
      const qi = I[base + q] as number;
      if (!less(key, c, qk, qi)) break;
      K[base + i] = qk;
      I[base + i] = qi;
      i = q;
    }
    K[base + i] = key;
    I[base + i] = c;
    this.hs[p] = n + 1;
    if (i === 0) this.dirty[p] = 1;
  }

  /** Pushes candidate (key, c) of pair p if it lies within the pair's cut. */
  private offer(p: number, key: number, c: number): void {
    const lk = this.lamK[p] as number;
    if (key < lk || (key === lk && c <= (this.lamC[p] as number))) this.push(p, key, c);
  }

  /** Drops stale tops of pair p = (a, b); returns the valid top's client or -1. */
  private top(p: number, a: number, b: number): number {
    const { hold, E } = this;
    const base = this.off[p] as number;
    for (;;) {
      const n = this.hs[p] as number;
      if (n === 0) return -1;
      const c = this.pc[base] as number;
      if (hold[c * E + a] === 1 && hold[c * E + b] === 0) return c;
      const last = n - 1;
      this.hs[p] = last;
      if (last > 0) {
        this.pk[base] = this.pk[base + last] as number;
        this.pc[base] = this.pc[base + last] as number;
        siftDownMin(this.pk, this.pc, base, 0, last);
      }
    }
  }

  /** Recomputes the cached raw cost of pair p = (a, b). */
  private refresh(p: number, a: number, b: number): void {
    this.dirty[p] = 0;
    const lk = this.lamK[p] as number;
    if (this.top(p, a, b) >= 0) {
      const key = this.pk[this.off[p] as number] as number;
      // Within 2 tol of the cut counts as exact: only rounding-level near-ties can hide below it.
      if (key <= lk + 2 * this.tol) {
        this.raw[p] = key;
        this.runc[p] = 0;
        return;
      }
    }
    // Exhausted heap: the arc may still exist among the candidates beyond the cut, costing more than lamK.
    this.raw[p] = lk;
    this.runc[p] = lk < Infinity ? 1 : 0;
  }

  private buildHolders(): Int32Array[] {
    const { C, E, hold, load } = this;
    const lists: Int32Array[] = [];
    for (let e = 0; e < E; e++) lists.push(new Int32Array(Math.max(8, 2 * (load[e] as number))));
    for (let c = 0; c < C; c++) {
      const row = c * E;
      for (let e = 0; e < E; e++) {
        if (hold[row + e] === 1) {
          const n = this.hn[e] as number;
          (lists[e] as Int32Array)[n] = c;
          this.hn[e] = n + 1;
        }
      }
    }
    this.holders = lists;
    return lists;
  }

  private addHolder(e: number, c: number): void {
    const holders = this.holders;
    if (holders === null) return;
    let list = holders[e] as Int32Array;
    const n = this.hn[e] as number;
    if (n === list.length) {
      const grown = new Int32Array(2 * n);
      grown.set(list);
      holders[e] = grown;
      list = grown;
    }
    list[n] = c;
    this.hn[e] = n + 1;
  }

  /**
   * Next candidates beyond the cut for every incomplete pair (a, *) at once (the path needed one whose arc is
   * known only by its bound): the `fill` smallest keys among the current holders of a, in one pass over them
   * (reading their rows and comparing each key with the pair's window is the cost).
   */
  private refill(a: number): void {
    const { E, w, hold, lamK, lamC } = this;
    const list = (this.holders ?? this.buildHolders())[a] as Int32Array;
    const m = this.hn[a] as number;
    this.refills++;
    // Scratch bounded max-heaps, one segment per active target b, with the target's cut copied locally.
    const act = this.rAct;
    const base = this.rBase;
    const limit = this.rLimit;
    const size = this.rSize;
    const over = this.rOver;
    const cutK = this.rCutK;
    const cutC = this.rCutC;
    const hiK = this.rHiK;
    let na = 0;
    let total = 0;
    for (let b = 0; b < E; b++) {
      if (b === a) continue;
      const p = a * E + b;
      // Every pair of a that is not complete, not just the ones known only by their bound: moves out of a
      // consume the cheap candidates of all its pairs together (the same clients are cheap for most b), so
      // topping them all up in this one pass over the holders saves the passes that would follow.
      if ((lamK[p] as number) === Infinity) continue;
      const lim = Math.min(this.fill[p] as number, Math.max(1, m));
      act[na] = b;
      base[na] = total;
      limit[na] = lim;
      size[na] = 0;
      over[na] = 0;
      cutK[na] = lamK[p] as number;
      cutC[na] = lamC[p] as number;
      hiK[na] = Infinity;
      na++;
      total += lim;
    }
    if (this.rK.length < total) {
      this.rK = new Float64Array(2 * total);
      this.rI = new Int32Array(2 * total);
    }
    const K = this.rK;
    const I = this.rI;
    const stamp = ++this.stampNow;
    let kept = 0;
    for (let j = 0; j < m; j++) {
      const c = list[j] as number;
      const row = c * E;
      // Compact the holder list on the way: drop clients that left a, and duplicates.
      if (hold[row + a] !== 1 || this.stamp[c] === stamp) continue;
      this.stamp[c] = stamp;
      list[kept++] = c;
      const wa = w[row + a] as number;
      for (let i = 0; i < na; i++) {
        const b = act[i] as number;
        const key = wa - (w[row + b] as number);
        // Most keys fall outside (cut, largest kept]: two comparisons, before looking at hold.
        const lo = cutK[i] as number;
        if (key < lo) continue;
        if (key > (hiK[i] as number)) {
          if (over[i] === 0 && hold[row + b] !== 1) over[i] = 1;
          continue;
        }
        if (hold[row + b] === 1) continue;
        if (key === lo && c <= (cutC[i] as number)) continue;
        const n = size[i] as number;
        const lim = limit[i] as number;
        const at = base[i] as number;
        if (n === lim) {
          over[i] = 1;
          if (!less(key, c, K[at] as number, I[at] as number)) continue;
        }
        const grown = offerBounded(K, I, at, n, lim, key, c);
        size[i] = grown;
        if (grown === lim) hiK[i] = K[at] as number;
      }
    }
    this.hn[a] = kept;
    for (let i = 0; i < na; i++) {
      const p = a * E + (act[i] as number);
      const n = size[i] as number;
      const at = base[i] as number;
      this.fill[p] = 2 * (limit[i] as number);
      if (over[i] === 1) {
        lamK[p] = K[at] as number;
        lamC[p] = I[at] as number;
      } else {
        lamK[p] = Infinity;
        lamC[p] = NO_CLIENT;
      }
      for (let q = 0; q < n; q++) this.push(p, K[at + q] as number, I[at + q] as number);
      this.dirty[p] = 1;
    }
  }

  /** Moves client c from expert a to expert b and registers its new arcs. */
  private move(c: number, a: number, b: number): void {
    const { E, w, hold, dirty } = this;
    const row = c * E;
    hold[row + a] = 0;
    hold[row + b] = 1;
    this.load[a] = (this.load[a] as number) - 1;
    this.load[b] = (this.load[b] as number) + 1;
    this.addHolder(b, c);
    this.moves++;
    // Cached arcs whose top was c (pairs (a, *) and (*, b)) are now stale.
    const { hs, off, pc } = this;
    for (let y = 0; y < E; y++) {
      const p1 = a * E + y;
      if ((hs[p1] as number) > 0 && pc[off[p1] as number] === c) dirty[p1] = 1;
      const p2 = y * E + b;
      if ((hs[p2] as number) > 0 && pc[off[p2] as number] === c) dirty[p2] = 1;
    }
    const wb = w[row + b] as number;
    const wa = w[row + a] as number;
    for (let y = 0; y < E; y++) {
      if (hold[row + y] === 1) {
        // Arc y->a: c could give up y for a (y = b is arc b->a, offered in the other branch).
        if (y !== b) this.offer(y * E + a, (w[row + y] as number) - wa, c);
      } else {
        // Arc b->y, including y = a.
        this.offer(b * E + y, wb - (w[row + y] as number), c);
      }
    }
  }

  /** Whether the tree path into t still starts at a node with excess and every arc has the cost Dijkstra saw. */
  private pathValid(t: number): boolean {
    const { E, par, f, L, U } = this;
    const T = E;
    for (let x = t; ;) {
      const u = par[x] as number;
      if (u < 0) return (this.excess[x] as number) > 0;
      if (u === T) {
        if ((f[x] as number) <= (L[x] as number)) return false;
      } else if (x === T) {
        if ((f[u] as number) >= (U[u] as number)) return false;
      } else {
        const p = u * E + x;
        if (this.dirty[p] === 1) this.refresh(p, u, x);
        if (this.runc[p] === 1 || this.raw[p] !== this.parKey[x]) return false;
      }
      x = u;
    }
  }

  /**
   * Moves one unit along the tree path into t (checked by pathValid) and returns the path's source. The arcs
   * of a simple path have distinct tails and distinct heads, so one move cannot invalidate another's client.
   */
  private augment(t: number): number {
    const { E, par, f } = this;
    const T = E;
    let x = t;
    for (;;) {
      const u = par[x] as number;
      if (u < 0) return x;
      if (u === T) f[x] = (f[x] as number) - 1;
      else if (x === T) f[u] = (f[u] as number) + 1;
      else {
        const c = this.top(u * E + x, u, x);
        if (c < 0) throw new Error("flex: internal error, a path arc vanished");
        this.move(c, u, x);
      }
      x = u;
    }
  }

  /** Successive shortest paths until no excess is left; false when some excess cannot be placed. */
  run(remaining: number): boolean {
    const { E, V, pi, dist, done, par, parUnc, parKey, settled, excess, f, L, U, raw, runc, dirty } = this;
    const T = E;
    while (remaining > 0) {
      const round = ++this.rounds;
      // Dijkstra from every node with excess until every deficit node is settled (dense: V is small).
      dist.fill(Infinity);
      done.fill(0);
      par.fill(-1);
      let deficits = 0;
      for (let v = 0; v < V; v++) {
        const x = excess[v] as number;
        if (x > 0) dist[v] = 0;
        else if (x < 0) deficits++;
      }
      let ns = 0;
      while (deficits > 0) {
        let u = -1;
        let du = Infinity;
        for (let v = 0; v < V; v++) {
          if (done[v] === 0 && (dist[v] as number) < du) {
            du = dist[v] as number;
            u = v;
          }
        }
        if (u < 0) break;
        done[u] = 1;
        settled[ns++] = u;
        if ((excess[u] as number) < 0) deficits--;
        const piu = pi[u] as number;
        if (u < T) {
          const base = u * E;
          for (let x = 0; x < E; x++) {
            if (done[x] === 1 || x === u) continue;
            const p = base + x;
            if (dirty[p] === 1) this.refresh(p, u, x);
            const r = raw[p] as number;
            if (r === Infinity) continue;
            let rc = r + piu - (pi[x] as number);
            if (rc < 0) rc = 0; // rounding only: reduced costs are >= 0 by invariant
            const nd = du + rc;
            if (nd < (dist[x] as number)) {
              dist[x] = nd;
              par[x] = u;
              parUnc[x] = runc[p] as number;
              parKey[x] = r;
            }
          }
          if (done[T] === 0 && (f[u] as number) < (U[u] as number)) {
            let rc = piu - (pi[T] as number);
            if (rc < 0) rc = 0;
            const nd = du + rc;
            if (nd < (dist[T] as number)) {
              dist[T] = nd;
              par[T] = u;
              parUnc[T] = 0;
            }
          }
        } else {
          for (let x = 0; x < E; x++) {
            if (done[x] === 1 || (f[x] as number) <= (L[x] as number)) continue;
            let rc = piu - (pi[x] as number);
            if (rc < 0) rc = 0;
            const nd = du + rc;
            if (nd < (dist[x] as number)) {
              dist[x] = nd;
              par[x] = T;
              parUnc[x] = 0;
            }
          }
        }
      }
      // pi += min(dist, D), D the farthest settled distance: every settled tree arc becomes tight and no
      // reduced cost turns negative (also where arcs were only lower bounds).
      const D = ns > 0 ? (dist[settled[ns - 1] as number] as number) : 0;
      for (let v = 0; v < V; v++) {
        const d = dist[v] as number;
        pi[v] = (pi[v] as number) + (d < D ? d : D);
      }
      let reached = false;
      for (let i = 0; i < ns; i++) {
        const t = settled[i] as number;
        if ((excess[t] as number) >= 0) continue;
        reached = true;
        // A path through an arc known only by its bound: refill that pair and search again.
        let uncertain = false;
        for (let x = t; (par[x] as number) >= 0; x = par[x] as number) {
          if (parUnc[x] === 1) {
            uncertain = true;
            const u = par[x] as number;
            if (this.refilled[u] !== round) {
              this.refilled[u] = round;
              this.refill(u);
            }
          }
        }
        if (uncertain) continue;
        while ((excess[t] as number) < 0 && this.pathValid(t)) {
          const s = this.augment(t);
          excess[s] = (excess[s] as number) - 1;
          excess[t] = (excess[t] as number) + 1;
          if (--remaining === 0) return true;
        }
      }
      // No deficit reachable even through bounded arcs: the excess has nowhere to go.
      if (!reached) return false;
    }
    return true;
  }
}

/** k-th smallest (1-based) of a copy of `values` (quickselect). */
function kthSmallest(values: Float64Array, k: number): number {
  const a = Float64Array.from(values);
  let lo = 0;
  let hi = a.length - 1;
  const target = k - 1;
  while (lo < hi) {
    const pivot = a[(lo + hi) >> 1] as number;
    let i = lo;
    let j = hi;
    while (i <= j) {
      while ((a[i] as number) < pivot) i++;
      while ((a[j] as number) > pivot) j--;
      if (i <= j) {
        const t = a[i] as number;
        a[i] = a[j] as number;
        a[j] = t;
        i++;
        j--;
      }
    }
    if (target <= j) hi = j;
    else if (target >= i) lo = i;
    else break;
  }
  return a[target] as number;
}

export const flex = defineStrategy({
  name: "flex",
  summary: "FLEX-MoE: maximize total fitness, every client exactly k_c experts, loads within the balanced bounds",
  solve: (p) => solveFlex(p),
});
