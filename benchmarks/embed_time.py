"""How long embedding a Text parameter's candidates takes: cold (new process) and cached.

Usage::

    python -m benchmarks.embed_time                 # 2,000 candidates, MiniLM, 2 threads
    python -m benchmarks.embed_time --n 10000 --threads 1

Each measurement runs in a fresh Python process with ``BAYESOPT_CACHE_DIR`` set
to a new temporary folder: ``cold`` starts from an empty cache (model load,
tokenization, forward passes, cache write), ``cached`` then reads the same
matrix back in another fresh process. Both report the time of ``embed`` inside
the process (``embed_s``: what an ask waits for), its CPU time over all
threads (``embed_cpu_s``: on a busy machine, ``embed_cpu_s / threads`` is
closer to the wall time on idle cores) and the whole process (``process_s``:
interpreter start and imports included). The candidates are
MLP configurations written as sentences, like ``hpobench_text``'s.
Targets (issue 5): under 20 s cold on 2 cores, under 1 s cached.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time

_CHILD = """
import json, sys, time
t0 = time.perf_counter()
import torch
torch.set_num_threads({threads})
from bayesopt.embedding import embed
texts = json.loads(sys.stdin.read())
t1, c1 = time.perf_counter(), time.process_time()
E = embed(texts, {embedder!r})
t2, c2 = time.perf_counter(), time.process_time()
out = {{"import_s": t1 - t0, "embed_s": t2 - t1, "embed_cpu_s": c2 - c1, "shape": list(E.shape)}}
print(json.dumps(out))
"""


def candidates(n: int) -> list[str]:
    """``n`` distinct sentences describing MLP configurations."""
    grid = itertools.product(
        (1, 2, 3),
        (16, 32, 64, 128, 256, 512, 1024),
        (8, 16, 32, 64, 128, 256),
        ("1e-4", "3e-4", "1e-3", "3e-3", "1e-2", "3e-2", "0.1"),
        ("1e-8", "1e-6", "1e-4", "1e-2"),
    )
    out = []
    for depth, width, batch, lr, l2 in grid:
        layers = "layer" if depth == 1 else "layers"
        out.append(
            f"MLP with {depth} hidden {layers} of width {width}, batch size {batch}, "
            f"learning rate {lr} and L2 penalty {l2}."
        )
        if len(out) == n:
            return out
    raise ValueError(f"n: at most {len(out)} candidates, got {n}.")


def measure(texts: list[str], cache_dir: str, threads: int, embedder: str) -> dict:
    """Run one fresh process that embeds ``texts``; returns its timings."""
    env = {**os.environ, "BAYESOPT_CACHE_DIR": cache_dir}
    code = _CHILD.format(threads=threads, embedder=embedder)
    t0 = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", code],
        input=json.dumps(texts),
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["process_s"] = time.perf_counter() - t0
    return result


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=2000, help="candidates (default 2000)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--embedder", default="minilm", help="registered embedder name")
    args = parser.parse_args(argv)
    texts = candidates(args.n)
    with tempfile.TemporaryDirectory() as cache_dir:
        cold = measure(texts, cache_dir, args.threads, args.embedder)
        cached = measure(texts, cache_dir, args.threads, args.embedder)
    report = {
        "n": args.n,
        "threads": args.threads,
        "embedder": args.embedder,
        "cold": {k: round(v, 3) if isinstance(v, float) else v for k, v in cold.items()},
        "cached": {k: round(v, 3) if isinstance(v, float) else v for k, v in cached.items()},
    }
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    report["load_average"] = round(load, 2)
    print(
        f"{args.n} candidates, {args.embedder}, {args.threads} torch threads "
        f"(load average {load:.1f} on {os.cpu_count()} CPUs)\n"
        f"  cold   embed {cold['embed_s']:6.2f} s   (CPU {cold['embed_cpu_s']:.2f} s, "
        f"process {cold['process_s']:.2f} s, imports {cold['import_s']:.2f} s)\n"
        f"  cached embed {cached['embed_s']:6.3f} s   (process {cached['process_s']:.2f} s)"
    )
    print(json.dumps(report))
    return report


if __name__ == "__main__":
    main()
