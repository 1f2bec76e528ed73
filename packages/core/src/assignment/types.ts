/** Shapes shared by the assignment strategies (paper section 3). */
import type { Rng } from "../rng.ts";

export interface AssignmentProblem {
  /** C, the participating clients. */
  clients: number;
  /** E, the experts. */
  experts: number;
  /** C*E row-major fitness Q(c, e); finite. */
  fitness: ArrayLike<number>;
  /** k_c per client, integers in 1..E. */
  capacity: ArrayLike<number>;
  /** delta >= 0 widening the load bounds; default 0 (exact fair loads). */
  slack?: number;
  /** Per-expert historical deficit d_e; default zeros. */
  deficit?: ArrayLike<number>;
}

/** Per-expert load bounds L_e <= n_e <= U_e. */
export interface Bounds {
  lower: number[];
  upper: number[];
}

export interface Assignment {
  /** Per client, ascending expert ids, exactly k_c of them. */
  experts: number[][];
  /** Holders per expert. */
  load: number[];
  /** Sum of fitness over the assigned pairs. */
  objective: number;
  /** The load bounds the strategy enforced (flex, roundrobin). */
  bounds?: Bounds;
}

export interface AssignOptions {
  /** Required by "random". */
  rng?: Rng;
  /** Round number; "roundrobin" rotates with it. Default 0. */
  round?: number;
}

export type AssignmentErrorCode = "INVALID_INPUT" | "INFEASIBLE";

export class AssignmentError extends Error {
  readonly code: AssignmentErrorCode;
  constructor(code: AssignmentErrorCode, message: string) {
    super(message);
    this.name = "AssignmentError";
    this.code = code;
  }
}
