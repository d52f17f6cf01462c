// QuickJS module instances with a capped WebAssembly.Memory. `runtime.setMemoryLimit()` does
// not cap memory in quickjs-emscripten 0.32 (its malloc accounting sees 0 bytes), so the cap is
// the memory's `maximum`: past it malloc fails and QuickJS throws "out of memory" at once.
// The WebAssembly is compiled once per process (the main thread hands it to its workers).
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { newQuickJSWASMModuleFromVariant, newVariant, RELEASE_SYNC, type QuickJSWASMModule } from "quickjs-emscripten";

export const PAGE = 64 * 1024;
const MiB = 1024 * 1024;
/** The build's minimum memory (16 MiB). */
export const INITIAL_PAGES = 256;
/** Below the heap: the 5 MiB C stack and static data (the stack pointer starts at 5.09 MiB). */
const RESERVED_BYTES = 5.25 * MiB;

let compiled: Promise<WebAssembly.Module> | undefined;

export function compiledWasm(): Promise<WebAssembly.Module> {
  compiled ??= (async () => {
    const require = createRequire(import.meta.url);
    return WebAssembly.compile(await readFile(require.resolve("@jitl/quickjs-wasmfile-release-sync/wasm")));
  })();
  return compiled;
}

/** A worker receives the main thread's compiled module instead of compiling its own. */
export function useCompiledWasm(module: WebAssembly.Module): void {
  compiled = Promise.resolve(module);
}

export type Instance = { mod: QuickJSWASMModule; memory: WebAssembly.Memory; capPages: number };

/** Memory pages that give a script about `memoryMb` of heap (never less than the build's minimum). */
export function capPagesFor(memoryMb: number): number {
  return Math.max(INITIAL_PAGES, Math.ceil((memoryMb * MiB + RESERVED_BYTES) / PAGE));
}

export async function newInstance(capPages: number): Promise<Instance> {
  const memory = new WebAssembly.Memory({ initial: INITIAL_PAGES, maximum: capPages });
  const mod = await newQuickJSWASMModuleFromVariant(
    newVariant(RELEASE_SYNC, { wasmModule: await compiledWasm(), wasmMemory: memory }),
  );
  return { mod, memory, capPages };
}

/** Bytes the instance's memory grew past its initial size (WebAssembly memory never shrinks). */
export const grownBytes = (inst: Instance): number => inst.memory.buffer.byteLength - INITIAL_PAGES * PAGE;

const OS_PAGE = 4096;
/**
 * About how much of the heap the instance has ever touched (so is resident): the highest OS
 * page holding a non-zero word, less the heap's start. Freed memory stays touched, fresh memory
 * is zero, so this is the heap's high-water mark; it costs a few µs (one read per page above it).
 */
export function touchedHeapBytes(inst: Instance): number {
  const words = new Int32Array(inst.memory.buffer);
  const step = OS_PAGE / 4;
  for (let i = words.length - step; i * 4 > RESERVED_BYTES; i -= step) {
    if (words[i] !== 0 || words[i + step / 2] !== 0 || words[i + step - 1] !== 0) return (i + step) * 4 - RESERVED_BYTES;
  }
  return 0;
}

/** Whether the instance's memory is (nearly) at its cap: an allocation failure there is the script's. */
export const atCap = (inst: Instance): boolean => inst.memory.buffer.byteLength >= (inst.capPages - 32) * PAGE;
