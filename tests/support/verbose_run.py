"""Run a spec and write its report with every log at DEBUG (datarefinery, httpx, httpcore), in
this process or on a fresh local Ray cluster whose workers log at DEBUG too:

    python -m tests.support.verbose_run SPEC OUT local
    python -m tests.support.verbose_run SPEC OUT ray RAY_TEMP_DIR
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path


def debug_logging() -> None:
    """Every record of datarefinery and the HTTP client to stderr (also a Ray worker's setup)."""
    logging.basicConfig(
        level=logging.DEBUG, format="%(levelname)s %(name)s: %(message)s", force=True
    )
    for name in ("datarefinery", "httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.DEBUG)


def main(argv: list[str]) -> int:
    import datarefinery
    from datarefinery.detect.factory import make_detector
    from datarefinery.evaluate import evaluate_dataset, write_report

    spec, out, executor = argv[0], Path(argv[1]), argv[2]
    debug_logging()
    ray = None
    if executor == "ray":
        import ray

        ray.init(
            num_cpus=2,
            include_dashboard=False,
            _temp_dir=argv[3],
            runtime_env={"worker_process_setup_hook": debug_logging},
        )
    try:
        result = datarefinery.run(spec, out, executor=executor, diversity=False)
        print(f"status {result.status} {result.message}")
        if result.status == "complete":
            # Pattern detectors only, as `refinery run` does (spaCy would take longer than the run).
            evaluation = evaluate_dataset(out, detector=make_detector("regex"))
            write_report(evaluation, out / "report")
    finally:
        if ray is not None:
            ray.shutdown()
    return 0 if result.status == "complete" else 3


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
