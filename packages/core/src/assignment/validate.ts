/** Input checks shared by every strategy: one typed error with a one-line reason. */
import { AssignmentError } from "./types.ts";
import type { AssignmentProblem } from "./types.ts";

/** A validated problem in the typed-array form the solvers work on. */
export interface Prepared {
  C: number;
  E: number;
  /** C*E row-major fitness (the caller's array when it already is a Float64Array; never written). */
  w: Float64Array;
  cap: Int32Array;
  /** F = sum of k_c. */
  F: number;
  slack: number;
  deficit: Float64Array;
}

const invalid = (message: string): AssignmentError => new AssignmentError("INVALID_INPUT", message);

export function isPositiveInt(x: unknown): x is number {
  return typeof x === "number" && Number.isInteger(x) && x > 0;
}

/** Capacities: integers >= 1; k_c > E is reported as INFEASIBLE (a client cannot hold an expert twice). */
export function checkCapacity(capacity: ArrayLike<number>, experts: number): Int32Array {
  const cap = new Int32Array(capacity.length);
  for (let c = 0; c < capacity.length; c++) {
    const k = capacity[c];
    if (typeof k !== "number" || !Number.isInteger(k) || k < 1) throw invalid(`capacity[${c}] must be an integer >= 1, got ${String(k)}`);
    if (k > experts) throw new AssignmentError("INFEASIBLE", `client ${c} asks for ${k} experts but only ${experts} exist`);
    cap[c] = k;
  }
  return cap;
}

export function checkSlack(slack: number | undefined): number {
  const s = slack ?? 0;
  if (typeof s !== "number" || !Number.isFinite(s) || s < 0) throw invalid(`slack must be a finite number >= 0, got ${String(s)}`);
  return s;
}

export function checkDeficit(deficit: ArrayLike<number> | undefined, experts: number): Float64Array {
  const d = new Float64Array(experts);
  if (deficit === undefined) return d;
  if (deficit.length !== experts) throw invalid(`deficit has length ${deficit.length}, expected ${experts}`);
  for (let e = 0; e < experts; e++) {
    const x = deficit[e];
    if (typeof x !== "number" || !Number.isFinite(x)) throw invalid(`deficit[${e}] must be finite, got ${String(x)}`);
    d[e] = x;
  }
  return d;
}

export function prepareProblem(p: AssignmentProblem): Prepared {
  if (typeof p !== "object" || p === null) throw invalid("problem must be an object");
  const { clients: C, experts: E } = p;
  if (!isPositiveInt(C)) throw invalid(`clients must be a positive integer, got ${String(C)}`);
  if (!isPositiveInt(E)) throw invalid(`experts must be a positive integer, got ${String(E)}`);
  const fitness = p.fitness;
  if (fitness === null || typeof fitness !== "object" || typeof fitness.length !== "number") throw invalid("fitness must be an array");
  if (fitness.length !== C * E) throw invalid(`fitness has length ${fitness.length}, expected clients*experts = ${C * E}`);
  const capacity = p.capacity;
  if (capacity === null || typeof capacity !== "object" || typeof capacity.length !== "number") throw invalid("capacity must be an array");
  if (capacity.length !== C) throw invalid(`capacity has length ${capacity.length}, expected ${C}`);
  const w = fitness instanceof Float64Array ? fitness : new Float64Array(C * E);
  for (let i = 0; i < C * E; i++) {
    const x = fitness[i];
    if (typeof x !== "number" || !Number.isFinite(x)) {
      throw invalid(`fitness[${Math.floor(i / E)}][${i % E}] must be finite, got ${String(x)}`);
    }
    if (w !== fitness) w[i] = x;
  }
  const cap = checkCapacity(capacity, E);
  let F = 0;
  for (let c = 0; c < C; c++) F += cap[c] as number;
  return { C, E, w, cap, F, slack: checkSlack(p.slack), deficit: checkDeficit(p.deficit, E) };
}
