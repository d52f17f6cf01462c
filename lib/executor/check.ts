// Compile-only checks for the admin API, on the main thread, on one QuickJS instance loaded
// when this module is imported (so checkSource is synchronous). A spare instance stands by: a
// pathological source can break an instance (the main thread's native stack is small).
import type { QuickJSContext } from "quickjs-emscripten";
import { capPagesFor, grownBytes, newInstance, type Instance } from "./wasm.ts";

/** The main thread has a ~1 MB native stack: deep nesting in the parser needs ≥ 32× QuickJS's own stack limit. */
const CHECK_STACK_BYTES = 32 * 1024;
const CHECK_MEMORY_MB = 256;
const CHECK_TIMEOUT_MS = 5000;
/** An instance whose memory grew past this (a huge source) is replaced. */
const REPLACE_GROWN = 32 * 1024 * 1024;

let active: Instance | undefined;
let spare: Instance | undefined;
let refilling: Promise<void> | undefined;

function refill(): Promise<void> {
  refilling ??= (async () => {
    try {
      active ??= await newInstance(capPagesFor(CHECK_MEMORY_MB));
      spare ??= await newInstance(capPagesFor(CHECK_MEMORY_MB));
    } finally {
      refilling = undefined;
    }
  })();
  return refilling;
}

function retireActive(): void {
  active = spare;
  spare = undefined;
  void refill().catch(() => undefined);
}

/** Loads the checker; importing this module already does (kept for callers that await it). */
export function loadSourceChecker(): Promise<void> {
  return active && spare ? Promise.resolve() : refill();
}

await loadSourceChecker();

/**
 * Whether `source` compiles as an ES module; the compiler's message (with line and column)
 * when it does not. Sources too deeply nested to judge on the main thread's small stack pass:
 * the sandbox, with a larger stack, is the judge (an invalid_script at run time).
 */
export function checkSource(source: string): { ok: true } | { ok: false; message: string } {
  const inst = active;
  if (!inst) return { ok: true }; // both instances broke in a row: let the sandbox judge
  let vm: QuickJSContext | undefined;
  const rt = inst.mod.newRuntime();
  try {
    rt.setMaxStackSize(CHECK_STACK_BYTES);
    const deadline = Date.now() + CHECK_TIMEOUT_MS;
    rt.setInterruptHandler(() => Date.now() > deadline);
    vm = rt.newContext();
    const r = vm.evalCode(source, "script.js", { type: "module", compileOnly: true });
    // quickjs-emscripten 0.32 reports a compiled module as a non-object, sometimes on the error
    // side; a compile error is always an Error object.
    if (!r.error) {
      r.value.dispose();
      return { ok: true };
    }
    if (vm.typeof(r.error) !== "object") {
      r.error.dispose();
      return { ok: true };
    }
    const e = r.error.consume((h) => vm!.dump(h)) as { name?: unknown; message?: unknown; stack?: unknown; lineNumber?: unknown };
    const name = typeof e?.name === "string" ? e.name : "SyntaxError";
    const message = typeof e?.message === "string" ? e.message : JSON.stringify(e);
    if (message === "stack overflow") return { ok: true };
    if (message === "out of memory") return { ok: false, message: "the source is too large to compile" };
    const at = /:(\d+):(\d+)\s*$/.exec(typeof e?.stack === "string" ? e.stack : "");
    const where = at ? ` (line ${at[1]}, column ${at[2]})` : typeof e?.lineNumber === "number" ? ` (line ${e.lineNumber})` : "";
    return { ok: false, message: `${name}: ${message}${where}` };
  } catch {
    // A host-side failure inside QuickJS (the native stack): this instance is done for.
    retireActive();
    return { ok: true };
  } finally {
    if (inst === active) {
      try {
        vm?.dispose();
        rt.dispose();
        if (grownBytes(inst) > REPLACE_GROWN) retireActive();
      } catch {
        retireActive();
      }
    }
  }
}
