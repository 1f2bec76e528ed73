// Measurements, not tests (not part of `npm test`): `FLAGS="--epochs 10" RUNS=3 npx playwright test -c e2e/measure/playwright.config.ts`.
import base from "../playwright.config.ts";

export default { ...base, testDir: ".", timeout: 8 * 60_000 };
