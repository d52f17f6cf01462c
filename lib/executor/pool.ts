// A worker's sandboxes and module instances. Every running execution has a module instance of
// its own, capped for its memoryMb. After a clean run the sandbox stays warm for the next
// execution of the same script version (no context to create, no module to compile: ~20 µs
// instead of ~250 µs and more for large sources); otherwise its runtime is freed and the
// instance goes back to a small pool, unless its memory grew (WebAssembly memory never shrinks).
import { Sandbox } from "./sandbox.ts";
import type { ExecutionJob } from "./types.ts";
import { capPagesFor, newInstance, touchedHeapBytes, type Instance } from "./wasm.ts";

const MiB = 1024 * 1024;
/** A sandbox whose heap reached past this is not kept warm (what it touched stays resident). */
const WARM_TOUCHED_MAX = 8 * MiB;
/** What all of a worker's idle warm sandboxes may keep touched together. */
const WARM_TOUCHED_TOTAL = 64 * MiB;
/** A blank instance whose heap reached past this is retired. */
const BLANK_TOUCHED_MAX = 2 * MiB;
const BLANK_MAX = 4;
/** Runs after which a warm sandbox is retired anyway (fragmentation, atoms, whatever else piles up). */
const MAX_USES = 5000;

export class SandboxPool {
  private readonly blank = new Map<number, Instance[]>();
  private blankCount = 0;
  private readonly warm = new Map<string, Sandbox[]>();
  /** Idle warm sandboxes, least recently used first, with the heap each has touched. */
  private readonly lru = new Map<Sandbox, number>();
  private lruTouched = 0;
  /** The last measure per sandbox (measuring costs a few µs: not after every run). */
  private readonly touched = new WeakMap<Sandbox, number>();

  constructor(
    private readonly preludes: { name: string; source: string }[],
    private readonly warmLimit: number,
    private readonly graceMs: number,
  ) {}

  async checkout(job: ExecutionJob): Promise<Sandbox> {
    const key = keyOf(job);
    const list = this.warm.get(key);
    while (list?.length) {
      const sb = list.pop()!;
      this.lruTouched -= this.lru.get(sb) ?? 0;
      this.lru.delete(sb);
      if (!list.length) this.warm.delete(key);
      if (sb.source === job.script.source) return sb;
      this.discard(sb, true);
    }
    const cap = capPagesFor(job.script.memoryMb);
    let inst = this.blank.get(cap)?.pop();
    if (inst) this.blankCount--;
    else {
      try {
        inst = await newInstance(cap);
      } catch {
        // Each WebAssembly.Memory reserves address space (~10 GiB with V8's guard regions):
        // give back the idle ones and try once more (V8 collects and retries on failure).
        this.dropIdle();
        inst = await newInstance(cap);
      }
    }
    return new Sandbox(inst, key, job.script.source, this.preludes, this.graceMs);
  }

  private dropIdle(): void {
    for (const sb of [...this.lru.keys()]) this.evict(sb);
    this.blank.clear();
    this.blankCount = 0;
  }

  /** Before the worker says it is ready: one blank instance for the common cap, its code paths warmed. */
  async prewarm(memoryMb: number): Promise<void> {
    const inst = await newInstance(capPagesFor(memoryMb));
    const sb = new Sandbox(inst, "", "", this.preludes, this.graceMs);
    this.discard(sb, true);
  }

  checkin(sb: Sandbox, reusable: boolean, instanceHealthy: boolean): void {
    if (reusable && this.warmLimit > 0 && sb.uses < MAX_USES) {
      let touched = this.touched.get(sb);
      if (touched === undefined || sb.uses % 16 === 0) this.touched.set(sb, (touched = touchedHeapBytes(sb.inst)));
      if (touched <= WARM_TOUCHED_MAX) {
        const list = this.warm.get(sb.key);
        if (list) list.push(sb);
        else this.warm.set(sb.key, [sb]);
        this.lru.set(sb, touched);
        this.lruTouched += touched;
        while (this.lru.size > this.warmLimit || this.lruTouched > WARM_TOUCHED_TOTAL) this.evict(this.lru.keys().next().value!);
        return;
      }
    }
    this.discard(sb, instanceHealthy);
  }

  get stats(): { warm: number; blank: number } {
    return { warm: this.lru.size, blank: this.blankCount };
  }

  private evict(sb: Sandbox): void {
    this.lruTouched -= this.lru.get(sb) ?? 0;
    this.lru.delete(sb);
    const list = this.warm.get(sb.key);
    if (list) {
      list.splice(list.indexOf(sb), 1);
      if (!list.length) this.warm.delete(sb.key);
    }
    this.discard(sb, true);
  }

  private discard(sb: Sandbox, instanceHealthy: boolean): void {
    const freed = sb.dispose();
    if (!freed || !instanceHealthy || this.blankCount >= BLANK_MAX || touchedHeapBytes(sb.inst) > BLANK_TOUCHED_MAX) return;
    const list = this.blank.get(sb.inst.capPages);
    if (list) list.push(sb.inst);
    else this.blank.set(sb.inst.capPages, [sb.inst]);
    this.blankCount++;
  }
}

/** What a warm sandbox may serve: the same script version with the same memory cap. */
const keyOf = (job: ExecutionJob) => `${job.script.id}\u0000${job.script.version}\u0000${job.script.memoryMb}`;
