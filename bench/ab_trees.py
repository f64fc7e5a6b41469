"""`run.py run --once` of several source trees, alternated over one Dovecot mailbox.

    python bench/ab_trees.py TREE [TREE ...] [--mails 5000] [--rounds 4] [--seed 1]

Each TREE is a checkout of Tierdesk (a `git worktree add` of another commit, say). The mails
(bench/mailgen.py) are loaded once; then every round runs each tree's `run --once` over a
fresh SQLite file, in alternating order, so drift in the machine's speed hits every tree
alike. Prints each run, then per tree the median ingest rate (wall and per CPU-second,
relative to the first tree) and the median peak RSS. On a shared machine whose speed
drifts, this same-run comparison is steadier than two runs of bench/ingest.py.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import ingest as bench
from mailgen import generate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("trees", nargs="+", type=Path)
    parser.add_argument("--mails", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    runs: dict[Path, list[tuple[float, float, float]]] = {tree: [] for tree in args.trees}
    with bench.dovecot() as server, tempfile.TemporaryDirectory(prefix="tierdesk-ab-") as tmp:
        folder = Path(tmp)
        site = bench.make_site(folder, server)
        loaded = bench.load(server, generate(args.mails, args.seed))
        for r in range(args.rounds):
            for n, tree in enumerate(args.trees if r % 2 == 0 else args.trees[::-1]):
                bench.ROOT = tree.resolve()  # run_once starts this tree's run.py
                name = f"r{r}t{n}"
                run = bench.run_once(site, site.env(loaded.account, folder / f"{name}.db"),
                                     folder / f"{name}.err")
                runs[tree].append((args.mails / run.ingest_s, args.mails / run.ingest_cpu_s,
                                   run.rss_mb))
                print(f"{tree}: {runs[tree][-1][0]:,.0f}/s, {runs[tree][-1][1]:,.0f}/cpu-s, "
                      f"peak {run.rss_mb:.1f} MB", flush=True)
    first = statistics.median(rate for _, rate, _ in runs[args.trees[0]])
    for tree, rows in runs.items():
        wall, cpu, rss = (statistics.median(row[i] for row in rows) for i in range(3))
        print(f"== {tree}: median {wall:,.0f}/s, {cpu:,.0f}/cpu-s ({cpu / first:.3f}), "
              f"peak RSS {rss:.1f} MB")


if __name__ == "__main__":
    main()
