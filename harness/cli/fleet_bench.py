"""``convbench bench --scheduler ADDRESS``: the same benchmark on every machine of a Dask cluster."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from harness.bench.stability import warning_lines
from harness.distributed.errors import ClusterError
from harness.report import fleet as fleet_report
from harness.support.render import fit_table
from harness.support.results_io import REPORTS, RunHistory, write_atomic, write_csv


def run_fleet(args, cases, names) -> int:
    """Benchmark ``cases`` x ``names`` on each machine of the cluster at ``args.scheduler``.

    Each machine's rows are appended to ``<out>-history.jsonl`` and ``out`` (default
    ``reports/fleet.csv``) with the machine records beside it (``fleet-machines.json``) are
    rewritten atomically as each machine finishes, so a failure later keeps them.
    """
    from harness.distributed.cluster import cluster_client
    from harness.distributed.fleet import bench_fleet

    out = Path(args.out or REPORTS / fleet_report.FLEET_CSV)
    history = RunHistory(out)
    frames, records = [], {}

    def keep(answer) -> None:
        import pandas as pd

        frames.append(answer["results"])
        records[answer["machine"]] = answer["record"]
        history.add(answer["results"].to_dict(orient="records"))
        write_csv(pd.concat(frames, ignore_index=True), out)
        write_atomic(fleet_report.machines_path(out), json.dumps(records, indent=1, default=str))
        extra = "; other Dask work on it: its timings are flagged" if answer["other_work"] else ""
        print(f"{answer['machine']}: {len(answer['results'])} rows in {answer['wall_s']:g} s, "
              f"{answer['threads']} threads{extra}", file=sys.stderr)

    settings = dict(threads=args.threads, budget_s=args.budget, min_runs=args.repeat,
                    cache="cold" if args.cold else "hot", limit_s=args.limit, until_stable_s=args.until_stable)
    try:
        with cluster_client(scheduler=args.scheduler) as client:
            print(f"benchmarking {len(cases)} layer(s) x {len(names)} backend(s) on every machine of "
                  f"{args.scheduler}, one machine at a time each", file=sys.stderr)
            bench_fleet(client, cases, names, on_machine=keep, **settings)
    except KeyboardInterrupt:
        print(f"\ninterrupted: the {len(records)} finished machine(s) are in {out} and {history.path}", file=sys.stderr)
        return 130
    except ClusterError as exc:
        raise ClusterError(f"{exc}; the {len(records)} finished machine(s) are in {out}") from None
    if not frames:
        raise ClusterError(f"no machine of {args.scheduler} returned results")
    import pandas as pd

    summary = fleet_report.per_machine(pd.concat(frames, ignore_index=True))
    print(fit_table(summary, index=True))
    for frame in frames:  # unstable timings are not compared: say which and why, per machine
        for line in warning_lines(frame):
            print(f"{frame.machine.iloc[0]}: {line}", file=sys.stderr)
    print(f"\nresults: {out} (machine records: {fleet_report.machines_path(out)}); `convbench report` puts the "
          "machines side by side")
    return 0
