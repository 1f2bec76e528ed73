/** Client capacities k_c of a run. */

/** "2" -> [2, 2, ...]; "1,2,4" -> 1, 2, 4, 1, 2, 4, ... dealt over the clients in order. */
export function parseCapacity(text: string, clients: number, experts: number): number[] {
  const parts = text.split(",").map((s) => s.trim());
  const ks = parts.map(Number);
  if (parts.length === 0 || ks.some((k, i) => !/^\d+$/.test(parts[i] ?? "") || k < 1 || k > experts))
    throw new RangeError(`capacity must be an integer in [1, ${experts}] or a comma list of them, got "${text}"`);
  return Array.from({ length: clients }, (_, c) => ks[c % ks.length] as number);
}
