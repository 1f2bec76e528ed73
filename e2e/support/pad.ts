/** Drawing on the page's pad with the mouse, as a student does: strokes for a few digits. */
import type { Page } from "@playwright/test";

/** Draw a stroke through `points` (fractions of the pad) with the mouse. */
export async function draw(page: Page, points: readonly (readonly [number, number])[]): Promise<void> {
  const box = (await page.locator("#pad").boundingBox())!;
  const at = ([fx, fy]: readonly [number, number]) => [box.x + fx * box.width, box.y + fy * box.height] as const;
  await page.mouse.move(...at(points[0]!));
  await page.mouse.down();
  for (const p of points.slice(1)) await page.mouse.move(...at(p), { steps: 6 });
  await page.mouse.up();
}

export const ONE: readonly (readonly [number, number])[] = [
  [0.45, 0.2],
  [0.55, 0.15],
  [0.55, 0.85],
];
export const SEVEN: readonly (readonly [number, number])[] = [
  [0.25, 0.2],
  [0.75, 0.2],
  [0.45, 0.85],
];
