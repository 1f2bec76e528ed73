/** Shared data shapes of the core. Plain typed arrays only: no TensorFlow.js, DOM or Node. */

/** A named tensor as it crosses the wire and as the aggregator sees it. */
export interface NamedTensor {
  name: string;
  shape: number[];
  data: Float32Array;
}

/** What the receiver expects: names and shapes, in order. */
export type TensorManifest = ReadonlyArray<{ readonly name: string; readonly shape: readonly number[] }>;

/** Per-expert feedback a client reports after local training (paper section 2.1). */
export interface ExpertFeedback {
  expert: number;
  /** Samples whose top gate choice among the assigned experts was this expert. */
  usage: number;
  /** Accuracy of the client's full model on those samples, in [0, 1]. */
  accuracy: number;
  /** Mean cross-entropy of the client's full model on those samples, >= 0. */
  loss: number;
}

/** A labelled image set, row-major, pixels in [0, 1]. */
export interface LabeledSet {
  x: Float32Array;
  y: Uint8Array;
  n: number;
  /** Per-sample shape, e.g. [28, 28, 1]. */
  shape: [number, number, number];
  numClasses: number;
}
