/** @flexmoe/model: the TF.js MoE (shared backbone, expert heads, per-client gate) and its local trainer. */
export * from "./spec.ts";
export { MoeModel, conv3x3Same, convImplFor, type ConvImpl } from "./model.ts";
export { MoeTrainer, type LocalUpdate, type TrainOptions, type TrainerOptions } from "./trainer.ts";
export { runLocalRound, type LocalRoundResult, type ReceivedModel } from "./local-round.ts";
