"""Speed and memory of the BTYD models (pipeline/modeling/btyd.py) on simulated customers.

Simulates N customers from known BG/NBD and Gamma-Gamma parameters (tests/support/btyd_sim.py;
T whole days on [30, 365], t_x rounded to whole days as a daily export records it, or kept
continuous with --continuous, the worst case for the compression to distinct histories),
writes them to a temporary .npz, then times fit_bgnbd, fit_gamma_gamma and the predictions in
a fresh process, so that its peak RSS (ru_maxrss) is not the simulation's. Each timing is the
median of --repeats runs. Prints one JSON line: the fitted parameters next to the true ones,
the median wall and CPU seconds, and the peak RSS in MB before and after the work. With
--p-dropout P every customer drops out with probability P (the BG/NBD limit a, b -> inf), the
case where fit_bgnbd may fit the limit model instead (its a and b are then null).

    .venv/bin/python benchmarks/bench_btyd.py                     # 1,000,000 customers
    .venv/bin/python benchmarks/bench_btyd.py --customers 10000 --continuous
    .venv/bin/python benchmarks/bench_btyd.py --customers 100000 --p-dropout 0.05
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
TRUE_BG = {"r": 0.25, "alpha": 4.0, "a": 0.8, "b": 2.5}
TRUE_GG = {"p": 6.0, "q": 4.0, "gamma": 15.0}
HORIZON = 90.0


def _true_bg(p_dropout: float | None) -> dict[str, float | None]:
    if p_dropout is None:
        return {**TRUE_BG, "p_dropout": None}
    return {
        "r": TRUE_BG["r"],
        "alpha": TRUE_BG["alpha"],
        "a": None,
        "b": None,
        "p_dropout": p_dropout,
    }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _median_seconds(fn: Callable[[], Any], repeats: int) -> tuple[dict[str, float], Any]:
    """Median wall and CPU seconds of ``repeats`` calls (CPU time is less moved by a busy box)."""
    wall, cpu, out = [], [], None
    for _ in range(repeats):
        started, started_cpu = time.perf_counter(), time.process_time()
        out = fn()
        wall.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
    return {"wall": round(statistics.median(wall), 3), "cpu": round(statistics.median(cpu), 3)}, out


def _child(args: argparse.Namespace) -> None:
    from pipeline.modeling import btyd

    data = np.load(args.data)
    x, t_x, T, m = data["x"], data["t_x"], data["T"], data["m"]
    rss_loaded = _rss_mb()
    r = args.repeats
    seconds: dict[str, dict[str, float]] = {}
    seconds["fit_bgnbd"], bg = _median_seconds(lambda: btyd.fit_bgnbd(x, t_x, T), r)
    seconds["fit_gamma_gamma"], gg = _median_seconds(lambda: btyd.fit_gamma_gamma(x, m), r)
    predictions = {
        "probability_alive": lambda: btyd.probability_alive(bg, x, t_x, T),
        "probability_no_purchase": lambda: btyd.probability_no_purchase(bg, HORIZON, x, t_x, T),
        "expected_purchases": lambda: btyd.expected_purchases(bg, HORIZON, x, t_x, T),
        "expected_spend_per_purchase": lambda: btyd.expected_spend_per_purchase(gg, x, m),
        "expected_spend": lambda: btyd.expected_spend(bg, gg, HORIZON, x, t_x, T, m),
    }
    for name, fn in predictions.items():
        seconds[name], _ = _median_seconds(fn, r)
    expected = btyd.expected_purchases(bg, HORIZON, x, t_x, T)
    out = {
        "customers": int(x.size),
        "whole_days": not args.continuous,
        "bgnbd": {
            "converged": bg.converged,
            "message": bg.message,
            **{
                k: {"true": v, "fitted": _rounded(getattr(bg, k))}
                for k, v in _true_bg(args.p_dropout).items()
            },
        },
        "gamma_gamma": {
            "converged": gg.converged,
            "message": gg.message,
            **{k: {"true": v, "fitted": round(getattr(gg, k), 4)} for k, v in TRUE_GG.items()},
        },
        f"purchases_next_{HORIZON:g}d": {
            "simulated_mean": round(float(data["future"].mean()), 4),
            "expected_mean": round(float(np.nanmean(expected)), 4),
        },
        "seconds": seconds,
        "repeats": r,
        "peak_rss_mb_data_loaded": rss_loaded,
        "peak_rss_mb": _rss_mb(),
    }
    print(json.dumps(out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3, help="runs per timing (median)")
    parser.add_argument("--continuous", action="store_true", help="t_x not rounded to days")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--p-dropout", type=float, default=None, help="one dropout probability for all (the limit)"
    )
    args = parser.parse_args()
    if args.child:
        _child(args)
        return
    sys.path.insert(0, str(REPO))  # the simulator is a test helper (tests/support/)
    from tests.support.btyd_sim import simulate_bgnbd

    started = time.perf_counter()
    sim = simulate_bgnbd(
        args.customers,
        **TRUE_BG,
        horizon=HORIZON,
        whole_days=not args.continuous,
        spend=(TRUE_GG["p"], TRUE_GG["q"], TRUE_GG["gamma"]),
        p_dropout=args.p_dropout,
        seed=args.seed,
    )
    simulate_s = round(time.perf_counter() - started, 2)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "customers.npz"
        np.savez(path, x=sim.x, t_x=sim.t_x, T=sim.T, m=sim.m, future=sim.future)
        extra = ["--continuous"] if args.continuous else []
        if args.p_dropout is not None:
            extra += ["--p-dropout", str(args.p_dropout)]
        done = subprocess.run(
            [sys.executable, __file__, "--child", "--data", str(path), "--repeats",
             str(args.repeats), *extra],
            capture_output=True, text=True, check=True, cwd=REPO,
        )  # fmt: skip
    out = json.loads(done.stdout.strip().splitlines()[-1])
    out["simulate_seconds"] = simulate_s
    print(json.dumps(out))


if __name__ == "__main__":
    main()
