/**
 * One client's part of a round, the same for the page, the simulator and the test clients: load the
 * received backbone and experts with the client's own gate, measure the personalized model on the
 * held-out split BEFORE training, train locally, and return the update.
 */
import type { LabeledSet, NamedTensor } from "@flexmoe/core";
import type { LocalUpdate, MoeTrainer, TrainOptions } from "./trainer.ts";

export interface ReceivedModel {
  backbone: readonly NamedTensor[];
  /** Held expert id -> its tensors. */
  experts: ReadonlyMap<number, NamedTensor[]>;
  /** The client's own gate (never uploaded). */
  gate: NamedTensor[];
}

export interface LocalRoundResult {
  /** The received model on the held-out split, before training. */
  eval: { accuracy: number; loss: number; samples: number };
  update: LocalUpdate;
}

export async function runLocalRound(
  trainer: MoeTrainer,
  model: ReceivedModel,
  data: { train: LabeledSet; test: LabeledSet },
  opts: TrainOptions,
  /** Called with the pre-training evaluation, before training starts (the page shows it at once). */
  onEvaluated?: (accuracy: number) => void,
): Promise<LocalRoundResult> {
  trainer.load([...model.backbone], model.experts, model.gate);
  const ev = await trainer.evaluate(data.test);
  onEvaluated?.(ev.accuracy);
  const update = await trainer.train(data.train, opts);
  return { eval: { ...ev, samples: data.test.n }, update };
}
