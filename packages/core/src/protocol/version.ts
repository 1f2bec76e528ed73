/**
 * The protocol's zod-free constants and helpers: the volunteer's page imports these, and keeping them out
 * of schemas.ts keeps zod (inbound validation, a server concern) out of the page's first script.
 */
export const PROTOCOL_VERSION = 1;

/** Binary frames arrive as Buffer (Node, a Uint8Array) or ArrayBuffer (browser). */
export const toBytes = (b: Uint8Array | ArrayBuffer): Uint8Array => (b instanceof Uint8Array ? b : new Uint8Array(b));
