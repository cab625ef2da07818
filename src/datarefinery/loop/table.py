"""The experiment's table: every method's runs (one per run seed) summarized as mean ± standard
deviation, and the paper's data-efficiency view.

A run is a mapping: ``method``, ``seed``, ``records``, ``accuracy`` (test), ``val_accuracy``,
``train_accuracy``, ``tokens`` and ``points`` (records and test accuracy after each round; for
ZeroGen, which has no rounds, on prefixes of its set), or
``method`` and ``note`` for a method that does not apply. The data-efficiency view averages the
points of a method's runs round by round into a curve of test accuracy against records, and for
each target accuracy says how many records each method needed to reach it and which needed the
fewest. Targets default to the final accuracy of every generating method, which asks the paper's
question: does S3 reach ZeroGen's accuracy with fewer records? ``gaps`` says how far apart the
generating methods' mean test accuracies are in units of their runs' spread, which is what "S3 >
GoldGen > ZeroGen" means with a handful of run seeds.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from math import sqrt
from pathlib import Path
from statistics import mean, stdev
from typing import Any

from datarefinery.executors.workers import available_cores
from datarefinery.io.write import write_json_atomic
from datarefinery.loop.rounds import S3Result

_REAL = ("gold", "gold (validation)")  # rows trained on real data, not generated
_MEASURES = ("records", "accuracy", "val_accuracy", "train_accuracy", "tokens")


def _spread(values: Sequence[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation (None for one value)."""
    return mean(values), (stdev(values) if len(values) > 1 else None)


def summarize(
    runs: Sequence[dict[str, Any]], measures: Sequence[str] = _MEASURES
) -> list[dict[str, Any]]:
    """One row per method, in the order the methods first appear: ``runs`` (n), and for every
    measure its mean and ``<measure>_sd``.
    """
    methods: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        methods.setdefault(run["method"], []).append(run)
    rows = []
    for method, group in methods.items():
        notes = [r["note"] for r in group if "note" in r]
        if notes:
            rows.append({"method": method, "runs": 0, "note": notes[0]})
            continue
        row: dict[str, Any] = {"method": method, "runs": len(group)}
        for measure in measures:
            values = [r[measure] for r in group if r.get(measure) is not None]
            if not values:
                row[measure] = row[f"{measure}_sd"] = None
                continue
            average, sd = _spread(values)
            row[measure] = round(average, 4)
            row[f"{measure}_sd"] = None if sd is None else round(sd, 4)
        rows.append(row)
    return rows


def curves(runs: Sequence[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Per method, its runs' points averaged point by point (round by round): records, test
    accuracy (mean, sd) and how many runs reached that point.
    """
    by_method: dict[str, list[list[dict[str, Any]]]] = {}
    for run in runs:
        if run.get("points"):
            by_method.setdefault(run["method"], []).append(run["points"])
    result = {}
    for method, point_lists in by_method.items():
        curve = []
        for index in range(max(len(points) for points in point_lists)):
            # A run that stopped early (no errors left) keeps its last set: it counts with its
            # last point, so the curve ends at the mean of the runs' final accuracies.
            here = [points[min(index, len(points) - 1)] for points in point_lists]
            reached = sum(index < len(points) for points in point_lists)
            accuracy, sd = _spread([p["accuracy"] for p in here])
            curve.append(
                {
                    "records": round(mean(p["records"] for p in here), 1),
                    "accuracy": round(accuracy, 4),
                    "sd": None if sd is None else round(sd, 4),
                    "runs": reached,
                }
            )
        result[method] = curve
    return result


def records_to_reach(curve: Sequence[dict[str, Any]], target: float) -> float | None:
    """The fewest records at which the curve's mean test accuracy is at least ``target``."""
    reached = [p["records"] for p in curve if p["accuracy"] >= target - 1e-9]
    return min(reached) if reached else None


def efficiency(runs: Sequence[dict[str, Any]], targets: Sequence[float] = ()) -> dict[str, Any]:
    """The data-efficiency view: ``curves`` and, for each target test accuracy, the records each
    method needed (None: never reached) and the generating method(s) that needed the fewest.
    """
    found = curves(runs)
    generating = [m for m in found if m not in _REAL]
    if not targets:
        targets = sorted({found[m][-1]["accuracy"] for m in generating})
    rows = []
    for target in targets:
        needed = {m: records_to_reach(curve, target) for m, curve in found.items()}
        reached = {m: n for m, n in needed.items() if n is not None and m in generating}
        fewest = min(reached.values(), default=None)
        rows.append(
            {
                "accuracy": round(target, 4),
                "records": needed,
                "fewest": [m for m, n in reached.items() if n == fewest],
            }
        )
    return {"curves": found, "targets": rows}


def gaps(rows: Sequence[dict[str, Any]], measure: str = "accuracy") -> list[dict[str, Any]]:
    """Every pair of generating methods (best mean first): the difference of their mean
    ``measure`` and that difference divided by the pooled sample sd of their runs (``sds``) and by
    its standard error (Welch's ``t``). Both are None unless each method has at least two runs.
    With three runs a side, |t| under 2.78 is within what run seeds alone produce at 5 %
    (Student's t, 4 degrees of freedom); Welch's test, which does not assume equal spreads, has
    fewer degrees of freedom and asks for more.
    """
    scored = [
        r
        for r in rows
        if "note" not in r and r["method"] not in _REAL and r.get(measure) is not None
    ]
    scored.sort(key=lambda r: -r[measure])
    result = []
    for i, high in enumerate(scored):
        for low in scored[i + 1 :]:
            diff = high[measure] - low[measure]
            sds = t = None
            n1, n2 = high["runs"], low["runs"]
            s1, s2 = high.get(f"{measure}_sd"), low.get(f"{measure}_sd")
            if n1 > 1 and n2 > 1 and s1 is not None and s2 is not None:
                pooled = sqrt(((n1 - 1) * s1**2 + (n2 - 1) * s2**2) / (n1 + n2 - 2))
                error = sqrt(s1**2 / n1 + s2**2 / n2)
                sds = round(diff / pooled, 2) if pooled > 0 else None
                t = round(diff / error, 2) if error > 0 else None
            result.append(
                {
                    "higher": high["method"],
                    "lower": low["method"],
                    "difference": round(diff, 4),
                    "sds": sds,
                    "t": t,
                    "runs": [n1, n2],
                }
            )
    return result


def _cell(row: dict[str, Any], measure: str, percent: bool) -> str:
    value, sd = row.get(measure), row.get(f"{measure}_sd")
    if value is None:
        return ""
    scale, digits = (100, 2) if percent else (1, 1 if value % 1 else 0)
    text = f"{scale * value:.{digits}f}"
    return text if sd is None else f"{text} ± {scale * sd:.{digits if percent else 1}f}"


# (measure, column title, shown in percent); a table may bring its own (QA: F1 and EM)
_COLUMNS: list[tuple[str, str, bool]] = [
    ("records", "records", False),
    ("accuracy", "accuracy (test, n={test})", True),
    ("val_accuracy", "val accuracy", True),
    ("train_accuracy", "train accuracy", True),
    ("tokens", "tokens", False),
]


def table_markdown(table: dict[str, Any]) -> str:
    """Table 2's shape with spreads (method, runs, records, test/val/train accuracy, tokens, or
    the table's own ``columns``), the data-efficiency view and the extra-data analysis.
    """
    columns = [(str(m), str(t), bool(p)) for m, t, p in table.get("columns") or _COLUMNS]
    titles = " | ".join(str(title).format(test=table["test"]) for _, title, _ in columns)
    lines = [f"| method | runs | {titles} |", "|---|---:|" + "---:|" * len(columns)]
    notes = []
    for row in table["rows"]:
        if "note" in row:
            lines.append(f"| {row['method']} | 0 |" + " |" * len(columns))
            notes.append(f"- {row['method']}: {row['note']}")
            continue
        cells = [_cell(row, measure, percent) for measure, _, percent in columns]
        lines.append(f"| {row['method']} | {row['runs']} | " + " | ".join(cells) + " |")
    lines += notes
    metric = table.get("metric", "accuracy")
    note = table.get("efficiency_note", "ZeroGen: on prefixes of its set")
    lines += _gaps_markdown(gaps(table["rows"]), metric)
    lines += ["", *_efficiency_markdown(table["efficiency"], metric, note), ""]
    lines += _analysis_markdown(table["extra_data_analysis"])
    return "\n".join(lines) + "\n"


def _gaps_markdown(found: Sequence[dict[str, Any]], metric: str) -> list[str]:
    if not found:
        return []
    lines = [
        "",
        f"Gaps in mean test {metric} (points; in pooled sd of the runs; Welch's t):",
        "",
    ]
    for gap in found:
        text = f"- {gap['higher']} − {gap['lower']}: {100 * gap['difference']:+.2f}"
        if gap["sds"] is not None:
            text += f", {gap['sds']:.2f} sd, t = {gap['t']:.2f}"
        else:
            text += " (one run or no spread: no sd)"
        lines.append(text + f" ({gap['runs'][0]} and {gap['runs'][1]} runs)")
    return lines


def _efficiency_markdown(view: dict[str, Any], metric: str, note: str) -> list[str]:
    lines = [
        f"Data efficiency: mean test {metric} (%) against records, after each round ({note}):",
        "",
    ]
    for method, curve in view["curves"].items():
        points = ", ".join(f"{p['records']:g} → {100 * p['accuracy']:.2f}" for p in curve)
        lines.append(f"- {method}: {points}")
    methods = list(view["curves"])
    if not view["targets"] or not methods:
        return lines
    lines += [
        "",
        f"Records needed to reach a test {metric} (— not reached):",
        "",
        f"| test {metric} ≥ | " + " | ".join(methods) + " | fewest (generated) |",
        "|---:|" + "---:|" * len(methods) + "---|",
    ]
    for target in view["targets"]:
        needed = [target["records"].get(m) for m in methods]
        cells = ["—" if n is None else f"{n:g}" for n in needed]
        fewest = ", ".join(target["fewest"]) or "none"
        lines.append(f"| {100 * target['accuracy']:.2f} | " + " | ".join(cells) + f" | {fewest} |")
    return lines


def _analysis_markdown(analysis: dict[str, Any]) -> list[str]:
    lines = [f"Extra-data analysis (S3 runs, {analysis.get('pairs', 0)} example/record pairs):"]
    if "edit_distance" in analysis:
        lines.append(
            f"- word edit distance to its own example {analysis['edit_distance']:.3f}, "
            f"to a random same-label example {analysis['edit_distance_random']:.3f}"
        )
    if "cosine" in analysis:
        lines.append(
            f"- embedding cosine to its own example {analysis['cosine']:.3f}, "
            f"to a random same-label example {analysis['cosine_random']:.3f}"
        )
    elif "cosine_note" in analysis:
        lines.append(f"- cosine not measured: {analysis['cosine_note']}")
    if "note" in analysis:
        lines.append(f"- {analysis['note']}")
    return lines


def write_table(out: Path, table: dict[str, Any], started: float) -> dict[str, Any]:
    """``table`` with the machine, the date and the seconds since ``started`` (a
    ``time.perf_counter`` reading), written as ``out/table.json`` and ``out/table.md``.
    """
    table = {
        **table,
        "gaps": gaps(table["rows"]),
        "machine": f"{platform.machine()} {platform.system()}, {available_cores()} cores",
        "date": datetime.now(UTC).date().isoformat(),
        "seconds": round(time.perf_counter() - started, 1),
    }
    write_json_atomic(out / "table.json", table)
    (out / "table.md").write_text(table_markdown(table), encoding="utf-8")
    return table


def loop_run(
    title: str, seed: int, result: S3Result, em: tuple[float | None, float | None] | None = None
) -> dict[str, Any]:
    """The run of a loop method: its last round's records and scores (``em``: QA's test and
    validation exact match, kept beside its F1), its tokens and a point for every round.
    """
    last = result.rounds[-1]
    test_em, val_em = em or (None, None)
    run = {
        "method": title,
        "seed": seed,
        "records": last.records,
        "accuracy": last.test_accuracy,
        "em": test_em,
        "val_accuracy": last.val_accuracy,
        "val_em": val_em,
        "train_accuracy": last.train_accuracy,
        "tokens": result.tokens,
        "rounds": len(result.rounds) - 1,
        "points": [
            {"round": r.round, "records": r.records, "accuracy": r.test_accuracy}
            for r in result.rounds
        ],
    }
    if em is None:  # a classifier's run has no exact match, not an empty one
        del run["em"], run["val_em"]
    return run
