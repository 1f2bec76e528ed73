/** The closed set of error codes an ack can carry. Adding one is a protocol change (docs/protocol.md). */
export const ErrorCode = {
  INVALID_PAYLOAD: "INVALID_PAYLOAD",
  UNSUPPORTED_PROTOCOL: "UNSUPPORTED_PROTOCOL",
  NOT_JOINED: "NOT_JOINED",
  UNKNOWN_TOKEN: "UNKNOWN_TOKEN",
  /** A replaced token came back after its successor was used: stolen or copied; the identity is revoked. */
  TOKEN_REUSED: "TOKEN_REUSED",
  STALE_ROUND: "STALE_ROUND",
  NOT_PARTICIPANT: "NOT_PARTICIPANT",
  NOT_ASSIGNED: "NOT_ASSIGNED",
  DUPLICATE_UPDATE: "DUPLICATE_UPDATE",
  BAD_FRAME: "BAD_FRAME",
  NAME_MISMATCH: "NAME_MISMATCH",
  SHAPE_MISMATCH: "SHAPE_MISMATCH",
  SIZE_MISMATCH: "SIZE_MISMATCH",
  NON_FINITE: "NON_FINITE",
  TOO_LARGE: "TOO_LARGE",
  /** A claim beyond what the server can bound (samples above the dealt shard, weights beyond ±MAX_ABS_WEIGHT). */
  OUT_OF_BOUNDS: "OUT_OF_BOUNDS",
  RATE_LIMITED: "RATE_LIMITED",
  UNAUTHORIZED: "UNAUTHORIZED",
  INTERNAL: "INTERNAL",
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export interface ProtocolError {
  code: ErrorCode;
  message: string;
}

/** What every ack carries: the value, or a typed error. Never an exception across the wire. */
export type AckResult<T> = { ok: true; value: T } | { ok: false; error: ProtocolError };

export const protocolError = (code: ErrorCode, message: string): { ok: false; error: ProtocolError } => ({
  ok: false,
  error: { code, message },
});
