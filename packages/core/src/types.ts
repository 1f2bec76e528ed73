/** Shared data shapes of the core. Plain typed arrays only: no TensorFlow.js, DOM or Node. */

/** A named tensor as it crosses the wire and as the aggregator sees it. */
export interface NamedTensor {
  name: string;
  shape: number[];
  data: Float32Array;
}

/** What the receiver expects: names and shapes, in order. */
export type TensorManifest = ReadonlyArray<{ readonly name: string; readonly shape: readonly number[] }>;

/**
 * When a client measures its per-expert feedback over its training samples (docs/protocol.md):
 * - `pre`: one forward pass of the model it received (global backbone and experts, own gate), before
 *   local training: how well the expert fits this client's data as the server holds it;
 * - `during`: accumulated over the training batches of the last local epoch as they run (the paper's
 *   D_{c,e}: the samples expert e processed during local training);
 * - `post`: one forward pass after local training (the locally trained model).
 */
export const FEEDBACK_MODES = ["pre", "during", "post"] as const;
export type FeedbackMode = (typeof FEEDBACK_MODES)[number];

/** Per-expert feedback a client reports with its update (paper section 2.1), measured as its {@link FeedbackMode} says. */
export interface ExpertFeedback {
  expert: number;
  /** Samples whose top gate choice among the assigned experts was this expert. */
  usage: number;
  /** Soft usage: the sum over the samples of this expert's gate weight (the experts' masses sum to the samples). */
  mass?: number;
  /** Accuracy of the client's full model on the samples routed to this expert, in [0, 1]. */
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
