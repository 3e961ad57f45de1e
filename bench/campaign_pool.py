"""Benchmark: reviewing the most uncertain proposals first, inside the retraining loop.

Two simulated campaigns on the same dataset (``--pool`` site-1 phantom CTs, added first;
each round the active model proposes every case not yet reviewed, a tolerance-0 annotator
reviews ``--cases`` of them, the model is retrained), side by side:

* ours: the project's queue, most uncertain proposal first (``order="queue"``);
* baseline: the order the cases were added (``order="added"``: no prioritisation).

Printed per round: voxels edited per reviewed case, and what is left wrong over the whole
pool after the round (reviewed cases' submitted labels, the others' proposals of that
round; all wrong voxels, and those off the one-voxel band at true borders: missed or leaked
organ parts), with baseline / ours. Run: ``python bench/campaign_pool.py [--pool 30]
[--cases 6] [--rounds 3] [--seed 0] [--threads 2]``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from napari_atlas_annotate.campaign import CampaignSettings, run_campaign


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", type=int, default=30)
    parser.add_argument("--cases", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--shape", type=int, nargs=3, default=(64, 112, 112))
    parser.add_argument("--out", type=Path, default=None, help="keep both reports here")
    args = parser.parse_args()

    reports, seconds = {}, {}
    for name, order in (("ours", "queue"), ("baseline", "added")):
        settings = CampaignSettings(
            cases=args.cases,
            rounds=args.rounds,
            seed=args.seed,
            shape=tuple(args.shape),
            device="cpu",
            threads=args.threads,
            spine=False,
            pool=args.pool,
            order=order,
        )
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as work:
            reports[name] = run_campaign(settings, work)
        seconds[name] = time.perf_counter() - t0
        if args.out:
            args.out.mkdir(parents=True, exist_ok=True)
            (args.out / f"{name}.json").write_text(json.dumps(reports[name], indent=2))

    print(
        f"pool of {args.pool} site-1 phantoms ({'x'.join(map(str, args.shape))}), "
        f"{args.cases} reviewed a round, seed {args.seed}; ours: most uncertain first "
        f"({seconds['ours']:.0f} s), baseline: order added ({seconds['baseline']:.0f} s)"
    )
    print(
        f"{'round':>5} {'reviewed':>8} | {'edited/reviewed case':>22} | "
        f"{'left wrong/pool case':>28} | {'left off the band':>26}"
    )
    print(
        f"{'':>5} {'':>8} | {'ours':>8} {'base':>6} {'ratio':>6} | "
        f"{'ours':>8} {'base':>8} {'b/o':>10} | {'ours':>7} {'base':>7} {'b/o':>10}"
    )
    for ours, base in zip(reports["ours"]["rounds"], reports["baseline"]["rounds"], strict=True):
        e_o, e_b = ours["voxels_edited_per_case"], base["voxels_edited_per_case"]
        w_o, w_b = ours["dataset_wrong_voxels_per_case"], base["dataset_wrong_voxels_per_case"]
        g_o = ours["dataset_wrong_off_boundary_per_case"]
        g_b = base["dataset_wrong_off_boundary_per_case"]
        print(
            f"{ours['round']:>5} {ours['pool_cases_reviewed']:>8} | {e_o:8.0f} {e_b:6.0f} "
            f"{e_o / e_b:5.2f}x | {w_o:8.0f} {w_b:8.0f} {w_b / w_o:9.2f}x | "
            f"{g_o:7.0f} {g_b:7.0f} {g_b / g_o:9.2f}x"
        )
    for name in ("ours", "baseline"):
        r = reports[name]["rounds"]
        print(
            f"{name}: models promoted {[x['promoted'] for x in r]}, held-out voxels to edit "
            f"per case {[round(x['held_out_voxels_to_edit_per_case']) for x in r]}"
        )


if __name__ == "__main__":
    main()
