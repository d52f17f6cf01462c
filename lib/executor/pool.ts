// A worker's sandboxes and module instances. Every running execution has a module instance of
// its own, capped for its memoryMb. After a clean run the sandbox stays warm for the next
// execution of the same script version (no context to create, no module to compile: ~20 µs
// instead of ~250 µs and more for large sources); otherwise its runtime is freed and the
// instance goes back to a small pool, unless its memory grew (WebAssembly memory never shrinks).
import { Sandbox } from "./sandbox.ts";
import type { ExecutionJob } from "./types.ts";
import { capPagesFor, grownBytes, newInstance, type Instance } from "./wasm.ts";

/** A warm sandbox whose instance grew past this is not kept (the memory would stay resident). */
const WARM_GROWN_MAX = 8 * 1024 * 1024;
/** A blank instance that grew past this is retired. */
const BLANK_GROWN_MAX = 2 * 1024 * 1024;
const BLANK_MAX = 4;
/** Runs after which a warm sandbox is retired anyway (fragmentation, atoms, whatever else piles up). */
const MAX_USES = 5000;

export class SandboxPool {
  private readonly blank = new Map<number, Instance[]>();
  private blankCount = 0;
  private readonly warm = new Map<string, Sandbox[]>();
  /** Idle warm sandboxes, least recently used first. */
  private readonly lru = new Set<Sandbox>();

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
      this.lru.delete(sb);
      if (!list.length) this.warm.delete(key);
      if (sb.source === job.script.source) return sb;
      this.discard(sb, true);
    }
    const cap = capPagesFor(job.script.memoryMb);
    let inst = this.blank.get(cap)?.pop();
    if (inst) this.blankCount--;
    else inst = await newInstance(cap);
    return new Sandbox(inst, key, job.script.source, this.preludes, this.graceMs);
  }

  /** Before the worker says it is ready: one blank instance for the common cap, its code paths warmed. */
  async prewarm(memoryMb: number): Promise<void> {
    const inst = await newInstance(capPagesFor(memoryMb));
    const sb = new Sandbox(inst, "", "", this.preludes, this.graceMs);
    this.discard(sb, true);
  }

  checkin(sb: Sandbox, reusable: boolean, instanceHealthy: boolean): void {
    if (reusable && this.warmLimit > 0 && sb.uses < MAX_USES && grownBytes(sb.inst) <= WARM_GROWN_MAX) {
      const list = this.warm.get(sb.key);
      if (list) list.push(sb);
      else this.warm.set(sb.key, [sb]);
      this.lru.add(sb);
      while (this.lru.size > this.warmLimit) this.evict(this.lru.values().next().value!);
      return;
    }
    this.discard(sb, instanceHealthy);
  }

  get stats(): { warm: number; blank: number } {
    return { warm: this.lru.size, blank: this.blankCount };
  }

  private evict(sb: Sandbox): void {
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
    if (!freed || !instanceHealthy || grownBytes(sb.inst) > BLANK_GROWN_MAX || this.blankCount >= BLANK_MAX) return;
    const list = this.blank.get(sb.inst.capPages);
    if (list) list.push(sb.inst);
    else this.blank.set(sb.inst.capPages, [sb.inst]);
    this.blankCount++;
  }
}

/** What a warm sandbox may serve: the same script version with the same memory cap. */
const keyOf = (job: ExecutionJob) => `${job.script.id}\u0000${job.script.version}\u0000${job.script.memoryMb}`;
