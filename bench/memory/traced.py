"""`onemap serve` under tracemalloc: every --every seconds the allocations that grew most since the first
snapshot after warm-up are written to --out (a debugging aid for bench/memory/run.py, not a server mode).

    .venv/bin/python bench/memory/traced.py --out /tmp/mem-trace.txt -- serve --database URL --port 8123
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def watch(out: Path, every: float, warm: float, frames: int) -> None:
    time.sleep(warm)
    base = tracemalloc.take_snapshot()
    filters = [tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, "<frozen *>")]
    base = base.filter_traces(filters)
    n = 0
    while True:
        time.sleep(every)
        n += 1
        snap = tracemalloc.take_snapshot().filter_traces(filters)
        current, peak = tracemalloc.get_traced_memory()
        lines = [f"== snapshot {n}, {time.strftime('%H:%M:%S')}: traced {current / 2**20:.1f} MB "
                 f"(peak {peak / 2**20:.1f} MB)"]
        for stat in snap.compare_to(base, "traceback")[:15]:
            lines.append(f"{stat.size_diff / 1024:+.1f} KiB, {stat.count_diff:+d} blocks "
                         f"(now {stat.size / 1024:.1f} KiB)")
            lines.extend("    " + line for line in stat.traceback.format()[-2 * frames:])
        with out.open("a") as fh:
            fh.write("\n".join(lines) + "\n\n")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--every", type=float, default=60)
    p.add_argument("--warm", type=float, default=60)
    p.add_argument("--frames", type=int, default=6)
    p.add_argument("argv", nargs=argparse.REMAINDER)
    args = p.parse_args()
    argv = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    tracemalloc.start(args.frames)
    threading.Thread(target=watch, args=(args.out, args.every, args.warm, args.frames), daemon=True).start()
    from api.cli import main as onemap

    sys.exit(onemap(argv))


if __name__ == "__main__":
    main()
