"""Per-rank memory, bytes read and wall time of load_sharded against the usual ways, at any world size.

Builds a fp32 checkpoint once (Wan 2.1 1.3B's real config with --layers of its 30 layers and its width
1536, or --width W for W/128 heads of 128 and an FFN 5.83x W, random weights, save_pretrained), then loads
it in fresh --world-rank gloo launches, one per method:

  shardrules   load_sharded: positioned reads of each rank's rows into its FSDP2 shards
  full+dist    every rank load_file()s the whole checkpoint (memory-mapped) then distribute_tensor()s each
               parameter (the SGLang / FastVideo way)
  broadcast    set_model_state_dict(full_state_dict=True, broadcast_from_rank0=True): rank 0 loads, broadcasts
  plain read   one process, safetensors load_file() and a read of every page (the floor for wall time)

A thread samples /proc/self/status every 2 ms during the load: VmRSS (anonymous + mapped file pages, what
top and the OOM killer count) and RssAnon, both reported as added over the process's own baseline.
"bytes read" is what the method asks of the file: counted by the loader for shardrules, the whole
checkpoint for a method that touches every tensor of the map. Rank processes run with
MALLOC_MMAP_THRESHOLD_=65536 so freed buffers go back to the system (see FSDP_NOTES). The page cache is
warm for every method (the checkpoint is read once before the first).

Wall time on a virtual machine varies two- to three-fold from run to run (touching new memory costs
what the host makes it cost), so shardrules and the plain copying read are run alternately ``--rounds``
times and the wall-time goal is judged on the median of the per-round ratios.

Per rank it also prints load_sharded's phases (build, check, shard, materialise, read), the fixed cost
(everything but the read, which is what is left of the reading after fully_shard returns) and the time the
thread that reads beside fully_shard took per tensor, so the many-small-tensor case (--layers 36 --width
512) and world sizes 2-8 can be compared. More ranks than cores oversubscribe the machine: say so with the
figures.

Per method it prints the CPU seconds a rank spent in the load (median over ranks): its main thread's, and all
its threads' but the sampler's. Oversubscribed, wall time says little; CPU time says what the work costs.

    python bench/load_memory.py [--dir DIR] [--layers 6] [--width 1536] [--world 2] [--rounds 5]
                                [--methods shardrules,full+dist,broadcast]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path
from statistics import median

CONFIG = dict(patch_size=[1, 2, 2], num_attention_heads=12, attention_head_dim=128, in_channels=16, out_channels=16,
              text_dim=4096, freq_dim=256, ffn_dim=8960, num_layers=30, cross_attn_norm=True, eps=1e-6,
              rope_max_seq_len=1024)
MiB = 2**20


class Sampler:
    """Peak VmRSS and RssAnon of this process, sampled by a thread."""

    def __init__(self, period: float = 0.002) -> None:
        self.period = period
        self.base = self.read()
        self.peak = dict(self.base)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.cpu = 0.0  # the sampling thread's own CPU seconds

    @staticmethod
    def read() -> dict[str, int]:
        out = {}
        with open("/proc/self/status") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key in ("VmRSS", "RssAnon", "RssFile"):
                    out[key] = int(rest.split()[0]) * 1024
        return out

    def _run(self) -> None:
        began = time.thread_time()
        while not self._stop.is_set():
            now = self.read()
            for key, value in now.items():
                self.peak[key] = max(self.peak[key], value)
            time.sleep(self.period)
        self.cpu = time.thread_time() - began

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        now = self.read()
        for key, value in now.items():
            self.peak[key] = max(self.peak[key], value)

    def added(self, key: str) -> int:
        return self.peak[key] - self.base[key]


def model_config(layers: int, width: int) -> dict:
    return dict(CONFIG, num_layers=layers, num_attention_heads=width // 128, ffn_dim=width * 8960 // 1536)


def make_checkpoint(model_dir: Path, layers: int, width: int) -> None:
    if (model_dir / "config.json").exists():
        return
    import diffusers
    import torch

    torch.manual_seed(0)
    model = diffusers.WanTransformer3DModel(**model_config(layers, width))
    model.save_pretrained(model_dir, safe_serialization=True, max_shard_size="10GB")
    print(f"wrote {model_dir} ({sum(p.numel() for p in model.parameters()) / 1e6:.0f}M parameters)")


def checkpoint_file(model_dir: Path) -> str:
    return str(next(model_dir.glob("*.safetensors")))


def rank_main(rank: int, method: str, model_dir: str, out_dir: str, world: int) -> None:
    import torch
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{out_dir}/pg-{method}", rank=rank, world_size=world,
                            timeout=timedelta(seconds=600))
    import diffusers

    import shardrules
    from shardrules.loader.build import build_model
    from shardrules.loader.shard import default_mesh

    _ = diffusers.WanTransformer3DModel  # the import of the model's module is start-up, not loading
    dist.barrier()
    result: dict = {}
    with Sampler() as sampler:
        start = time.perf_counter()
        main_cpu, process_cpu = time.thread_time(), sum(os.times()[:2])
        if method == "shardrules":
            stats = shardrules.LoadStats()
            shardrules.load_sharded(model_dir, stats=stats, progress=False)
            result["bytes_read"] = stats.bytes_read
            result["phases"] = stats.phases
            result["tensors"] = stats.tensors
            result["early_tensors"] = stats.early_tensors
            result["early_read_seconds"] = stats.early_read_seconds
        else:
            from safetensors.torch import load_file
            from torch.distributed.tensor import distribute_tensor

            model = build_model(model_dir, meta="params")
            buffers = dict(model.named_buffers())
            shardrules.shard(model, shardrules.plan(model), mesh=default_mesh())
            model.to_empty(device="cpu")
            with torch.no_grad():
                for name, buf in model.named_buffers():
                    buf.copy_(buffers[name])
            path = checkpoint_file(Path(model_dir))
            if method == "full+dist":
                full = load_file(path)
                with torch.no_grad():
                    for name, param in model.named_parameters():
                        local = distribute_tensor(full[name], param.device_mesh, param.placements).to_local()
                        param.to_local().copy_(local)
                result["bytes_read"] = os.path.getsize(path)
                del full
            else:
                from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

                full = load_file(path) if rank == 0 else {}
                set_model_state_dict(model, full, options=StateDictOptions(full_state_dict=True,
                                                                           broadcast_from_rank0=True))
                result["bytes_read"] = os.path.getsize(path) if rank == 0 else 0
                del full
        result["seconds"] = time.perf_counter() - start
        result["main_cpu"] = time.thread_time() - main_cpu
        process_cpu = sum(os.times()[:2]) - process_cpu
    result["load_cpu"] = process_cpu - sampler.cpu  # every thread of the load: the main one and any reader
    result["vmrss"] = sampler.added("VmRSS")
    result["anon"] = sampler.added("RssAnon")
    Path(out_dir, f"{method}-{rank}.json").write_text(json.dumps(result))
    dist.barrier()
    dist.destroy_process_group()
    sys.stdout.flush()
    os._exit(0)


def plain_read(model_dir: str, out_dir: str, how: str) -> None:
    """``mmap``: safetensors load_file, then one element of every 4 KiB page (the file's pages are mapped,
    nothing is copied); ``copy``: one readinto() of the whole file into a fresh buffer, the least a process
    can do to own the data, as a loaded model must."""
    import torch
    from safetensors.torch import load_file

    path = checkpoint_file(Path(model_dir))
    with Sampler() as sampler:
        start = time.perf_counter()
        if how == "mmap":
            tensors = load_file(path)
            total = 0.0
            for tensor in tensors.values():
                total += float(tensor.reshape(-1)[::1024].sum()) if tensor.numel() else 0.0
        else:
            buffer = torch.empty(os.path.getsize(path), dtype=torch.uint8)
            with open(path, "rb", buffering=0) as f:
                view, done = memoryview(buffer.numpy()), 0
                while done < len(view):
                    done += f.readinto(view[done:])
        seconds = time.perf_counter() - start
    Path(out_dir, f"plain-{how}.json").write_text(json.dumps({
        "seconds": seconds, "vmrss": sampler.added("VmRSS"), "anon": sampler.added("RssAnon"),
        "bytes_read": os.path.getsize(path)}))


def launch(method: str, model_dir: Path, out_dir: Path, world: int) -> list[dict]:
    import torch.multiprocessing as mp

    (out_dir / f"pg-{method}").unlink(missing_ok=True)  # a file store left by an earlier run
    ctx = mp.start_processes(rank_main, args=(method, str(model_dir), str(out_dir), world), nprocs=world,
                             join=False, start_method="spawn")
    while not ctx.join(timeout=600):
        pass
    return [json.loads((out_dir / f"{method}-{rank}.json").read_text()) for rank in range(world)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dir", help="checkpoint folder, made once (default: /tmp/shardrules-bench/wan-"
                                      "LAYERSl-WIDTHw)")
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--width", type=int, default=1536, help="model width, a multiple of 128 (default 1536)")
    parser.add_argument("--world", type=int, default=2, help="ranks per launch (default 2)")
    parser.add_argument("--rounds", type=int, default=5, help="alternate runs of shardrules and a plain read")
    parser.add_argument("--methods", default="shardrules,full+dist,broadcast",
                        help="comma-separated; shardrules always runs")
    args = parser.parse_args()
    os.environ["MALLOC_MMAP_THRESHOLD_"] = "65536"
    os.environ["OMP_NUM_THREADS"] = "1"
    world = args.world
    model_dir = Path(args.dir or f"/tmp/shardrules-bench/wan-{args.layers}l-{args.width}w")
    make_checkpoint(model_dir, args.layers, args.width)
    out_dir = model_dir.parent / "results"
    out_dir.mkdir(exist_ok=True)
    size = os.path.getsize(checkpoint_file(model_dir))

    def plain_run(how: str) -> dict:
        subprocess.run([sys.executable, __file__, "--plain", str(model_dir), str(out_dir), how], check=True)
        return json.loads((out_dir / f"plain-{how}.json").read_text())

    plain_run("mmap")  # warms the page cache
    plain = {"mmap": plain_run("mmap")}
    rounds = []  # (shardrules wall, plain copying read wall), run alternately
    for _ in range(max(1, args.rounds)):
        plain["copy"] = plain_run("copy")
        ours = launch("shardrules", model_dir, out_dir, world)
        rounds.append((max(r["seconds"] for r in ours), plain["copy"]["seconds"]))
    others = [m for m in args.methods.split(",") if m in ("full+dist", "broadcast")]
    rows = {"shardrules": ours, **{m: launch(m, model_dir, out_dir, world) for m in others}}

    import shardrules
    from shardrules.loader.build import build_model

    shard_size = shardrules.plan(build_model(model_dir, meta="all")).bytes_per_rank(world)
    print(f"checkpoint {size / MiB:.0f} MiB fp32 ({ours[0]['tensors']} tensors), world size {world} on "
          f"{os.cpu_count()} cores, one rank's shard {shard_size / MiB:.0f} MiB\n")
    print("| method | rank | added peak VmRSS MiB | added peak RssAnon MiB | read MiB | wall s |")
    print("|---|---|---|---|---|---|")
    for method, results in rows.items():
        for rank, r in enumerate(results):
            print(f"| {method} | {rank} | {r['vmrss'] / MiB:.0f} | {r['anon'] / MiB:.0f} | "
                  f"{r['bytes_read'] / MiB:.0f} | {r['seconds']:.2f} |")
    for how, r in plain.items():
        print(f"| plain read, {how} (1 process) | - | {r['vmrss'] / MiB:.0f} | {r['anon'] / MiB:.0f} | "
              f"{r['bytes_read'] / MiB:.0f} | {r['seconds']:.2f} |")
    ours, full = rows["shardrules"], rows.get("full+dist")
    for rank, r in enumerate(ours):
        phases = r["phases"]
        fixed = sum(v for k, v in phases.items() if k != "read")
        early = r["early_tensors"]
        print(f"shardrules rank {rank} phases: " + ", ".join(f"{k} {v:.3f} s" for k, v in phases.items())
              + f"; fixed {fixed:.3f} s; {early} of {r['tensors']} tensors read beside fully_shard in "
              f"{r['early_read_seconds']:.3f} s ({r['early_read_seconds'] / max(1, early) * 1e6:.0f} us/tensor)")
    print("CPU seconds per rank during the load (median over ranks; the sampling thread's left out): main "
          "thread / all threads")
    for method, results in rows.items():
        print(f"  {method}: {median(r['main_cpu'] for r in results):.2f} / "
              f"{median(r['load_cpu'] for r in results):.2f} s")
    walls = sorted(r["seconds"] for r in ours)
    print(f"shardrules wall per rank: median {median(walls):.2f} s (min {walls[0]:.2f}, max {walls[-1]:.2f})"
          + (f"; full+dist median {median(r['seconds'] for r in rows['full+dist']):.2f} s" if "full+dist" in rows
             else ""))
    peak = max(r["vmrss"] for r in ours)
    print("\ngoals:")
    if full:
        print(f"  added peak VmRSS vs full+dist: {peak / max(r['vmrss'] for r in full):.2f}x (goal <= 0.5x)")
    print(f"  added peak VmRSS vs shard size: {peak / shard_size:.2f}x, {(peak - shard_size) / MiB:+.0f} MiB "
          f"(goals <= 1.2x, <= +16 MiB)")
    print(f"  bytes read per rank vs checkpoint / {world}: {max(r['bytes_read'] for r in ours) / (size / world):.3f}x "
          f"(goal <= 1.05x)")
    ratios = [wall / copy for wall, copy in rounds]
    walls = [wall for wall, _ in rounds]
    print(f"  wall time vs plain copying read: median {median(ratios):.2f}x over {len(rounds)} alternating "
          f"rounds (goal <= 1.5x); shardrules / plain s per round: "
          + ", ".join(f"{w:.2f}/{c:.2f}" for w, c in rounds))
    print(f"  wall time vs mapping the file without copying: {median(walls) / plain['mmap']['seconds']:.0f}x")


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--plain":
        plain_read(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        main()
