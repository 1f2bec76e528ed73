// Child-process entry of the experiment pool: runs the TypeScript worker through tsx, like bin/flexmoe.mjs.
import { register } from "tsx/esm/api";

register();
await import("./worker.ts");
