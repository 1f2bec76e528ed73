/**
 * Client-expert fitness Q (paper section 2): instantaneous scores from client feedback, folded into
 * a per-(client, expert) exponential moving average that the assignment solver reads.
 */
import type { ExpertFeedback } from "./types.ts";

/** Which instantaneous score to use: accuracy-driven, or loss-driven with rate alphaL > 0. */
export type FitnessKind = { kind: "acc" } | { kind: "loss"; alphaL: number };

/** Options of {@link FitnessMatrix.update}. */
export interface FitnessUpdateOptions {
  /** EMA rate in (0, 1]: Q = (1 - beta) Q + beta s. */
  beta: number;
  fitness: FitnessKind;
  /**
   * An assigned expert the client routed no sample to: "keep" leaves its Q (the score is undefined
   * without samples), "zero" scores it 0 (it did nothing for this client). @default "keep"
   */
  zeroUsage?: ZeroUsageRule;
}

export const ZERO_USAGE_RULES = ["keep", "zero"] as const;
export type ZeroUsageRule = (typeof ZERO_USAGE_RULES)[number];

/** Serialized form of a {@link FitnessMatrix}; rows keep their insertion order. */
export interface FitnessMatrixJSON {
  experts: number;
  q0: number;
  rows: { id: string; q: number[] }[];
}

/**
 * Instantaneous fitness s in [0, 1] (paper section 2.2).
 * acc: accuracy clipped to [0, 1]. loss: exp(-alphaL * max(loss, 0)).
 * Feedback is self-reported, so out-of-range values are clipped and NaN scores 0 (worst).
 * @throws RangeError if alphaL is not a finite number > 0.
 */
export function instantScore(fb: ExpertFeedback, f: FitnessKind): number {
  if (f.kind === "acc") {
    const a = fb.accuracy;
    if (Number.isNaN(a)) return 0;
    return Math.min(1, Math.max(0, a));
  }
  if (!(Number.isFinite(f.alphaL) && f.alphaL > 0)) throw new RangeError(`fitness: alphaL must be a finite number > 0, got ${f.alphaL}`);
  const loss = fb.loss;
  if (Number.isNaN(loss)) return 0;
  return Math.exp(-f.alphaL * Math.max(0, loss));
}

/**
 * The fitness table Q(c, e): one row of `experts` scores per client id. Clients join over time;
 * a new row starts at q0 everywhere (optimistic by default, so untried pairs look attractive).
 */
export class FitnessMatrix {
  readonly experts: number;
  readonly q0: number;
  private readonly rows = new Map<string, Float64Array>();

  /** @throws RangeError on a non-integer or non-positive expert count, or a non-finite q0. */
  constructor(experts: number, q0 = 1.0) {
    if (!(Number.isSafeInteger(experts) && experts >= 1)) throw new RangeError(`fitness: experts must be an integer >= 1, got ${experts}`);
    if (!Number.isFinite(q0)) throw new RangeError(`fitness: q0 must be finite, got ${q0}`);
    this.experts = experts;
    this.q0 = q0;
  }

  /** Whether a row exists for this client. */
  has(clientId: string): boolean {
    return this.rows.has(clientId);
  }

  /** Client ids in the order their rows were created. */
  clientIds(): string[] {
    return [...this.rows.keys()];
  }

  /** Q(clientId, e); q0 for a client without a row (no row is created). */
  get(clientId: string, e: number): number {
    this.checkExpert(e);
    const r = this.rows.get(clientId);
    return r === undefined ? this.q0 : (r[e] as number);
  }

  /** The live row of a client (mutations are visible), created filled with q0 if new. */
  row(clientId: string): Float64Array {
    let r = this.rows.get(clientId);
    if (r === undefined) {
      r = new Float64Array(this.experts).fill(this.q0);
      this.rows.set(clientId, r);
    }
    return r;
  }

  /** Dense C x E row-major copy for the given clients (unknown clients read as q0; no rows created). */
  toDense(clientIds: readonly string[]): Float64Array {
    const out = new Float64Array(clientIds.length * this.experts);
    clientIds.forEach((id, c) => {
      const r = this.rows.get(id);
      if (r === undefined) out.fill(this.q0, c * this.experts, (c + 1) * this.experts);
      else out.set(r, c * this.experts);
    });
    return out;
  }

  /**
   * Folds one round of feedback into Q (paper section 2.3): for each assigned expert e with
   * usage > 0, Q = (1 - beta) Q + beta s. Assigned experts with zero (or missing, or NaN) usage
   * keep their Q, since s is undefined without samples; feedback for experts that were not assigned
   * is ignored, so a client cannot move scores it was not given.
   * @throws RangeError on beta outside (0, 1] or an assigned expert index out of range.
   */
  update(clientId: string, assigned: readonly number[], feedback: readonly ExpertFeedback[], opts: FitnessUpdateOptions): void {
    const { beta, fitness } = opts;
    if (!(beta > 0 && beta <= 1)) throw new RangeError(`fitness: beta must be in (0, 1], got ${beta}`);
    for (const e of assigned) this.checkExpert(e);
    const row = this.row(clientId);
    const done = new Set<number>();
    for (const e of assigned) {
      // An expert listed twice in `assigned` is updated once.
      if (done.has(e)) continue;
      done.add(e);
      // First feedback entry per expert wins; duplicates are ignored rather than double-counted.
      const fb = feedback.find((f) => f.expert === e);
      if (fb === undefined || !(fb.usage > 0)) {
        if (opts.zeroUsage === "zero") row[e] = (1 - beta) * (row[e] as number);
        continue;
      }
      row[e] = (1 - beta) * (row[e] as number) + beta * instantScore(fb, fitness);
    }
  }

  /**
   * Exploration by forgetting: every expert of the client NOT in `assigned` moves toward the prior q0,
   * Q = Q + rate (q0 - Q), so a pair that has not been measured for a while drifts back to the prior
   * and (with an optimistic q0) is tried again instead of staying frozen out.
   * @throws RangeError on rate outside [0, 1].
   */
  decayUnassigned(clientId: string, assigned: readonly number[], rate: number): void {
    if (!(rate >= 0 && rate <= 1)) throw new RangeError(`fitness: decay rate must be in [0, 1], got ${rate}`);
    if (rate === 0) return;
    const row = this.row(clientId);
    for (let e = 0; e < this.experts; e++) if (!assigned.includes(e)) row[e] = (row[e] as number) + rate * (this.q0 - (row[e] as number));
  }

  /** Drops a client's row (a pruned client); a later row for the same id starts at q0. */
  remove(clientId: string): void {
    this.rows.delete(clientId);
  }

  /** An independent copy (the round engine never mutates the state it was given). */
  clone(): FitnessMatrix {
    const m = new FitnessMatrix(this.experts, this.q0);
    for (const [id, r] of this.rows) m.rows.set(id, r.slice());
    return m;
  }

  /** Plain JSON for persistence. */
  toJSON(): FitnessMatrixJSON {
    return {
      experts: this.experts,
      q0: this.q0,
      rows: [...this.rows].map(([id, q]) => ({ id, q: Array.from(q) })),
    };
  }

  /**
   * Rebuilds a matrix from {@link FitnessMatrix.toJSON} output (possibly after a JSON round trip).
   * @throws TypeError when the data is malformed (wrong types, row widths, non-finite scores, duplicate ids).
   */
  static fromJSON(data: unknown): FitnessMatrix {
    const fail = (why: string): never => {
      throw new TypeError(`fitness: bad FitnessMatrix JSON: ${why}`);
    };
    if (typeof data !== "object" || data === null) return fail("not an object");
    const d = data as Record<string, unknown>;
    const experts = d["experts"];
    const q0 = d["q0"];
    const rows = d["rows"];
    if (typeof experts !== "number" || !Number.isSafeInteger(experts) || experts < 1) return fail("experts");
    if (typeof q0 !== "number" || !Number.isFinite(q0)) return fail("q0");
    if (!Array.isArray(rows)) return fail("rows is not an array");
    const m = new FitnessMatrix(experts, q0);
    for (const r of rows as unknown[]) {
      if (typeof r !== "object" || r === null) return fail("row is not an object");
      const { id, q } = r as Record<string, unknown>;
      if (typeof id !== "string") return fail("row id is not a string");
      if (m.rows.has(id)) return fail(`duplicate row id ${JSON.stringify(id)}`);
      if (!Array.isArray(q) || q.length !== experts) return fail(`row ${JSON.stringify(id)} does not have ${experts} scores`);
      const values = q as unknown[];
      if (!values.every((v) => typeof v === "number" && Number.isFinite(v)))
        return fail(`row ${JSON.stringify(id)} has a non-finite score`);
      m.rows.set(id, Float64Array.from(values as number[]));
    }
    return m;
  }

  private checkExpert(e: number): void {
    if (!(Number.isInteger(e) && e >= 0 && e < this.experts)) throw new RangeError(`fitness: expert ${e} is outside [0, ${this.experts})`);
  }
}
