"""Calibration on runs whose labels, scores, verdicts and people's decisions are known (see
``tests.support.calibration_runs``): the figures match the arithmetic done by hand here, and the
report page and the card show them."""

import zlib
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from datarefinery.decisions import Decision, DecisionStore
from datarefinery.detect.factory import make_detector
from datarefinery.evaluate import evaluate_dataset, write_report
from datarefinery.evaluate.calibration import Share, calibrate, figure_rows
from datarefinery.evaluate.suite import MemoEmbedder
from tests.support.calibration_runs import labelled_run, pairwise_run


@pytest.fixture(scope="module")
def labelled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return labelled_run(tmp_path_factory.mktemp("labelled"))


def test_the_labeller_against_people_by_hand(labelled: Path) -> None:
    # Decided and not rejected: r00 r01 r02 r03 r05 r08 r09 r13 r14 r15 (r03 and r13 corrected).
    #                  model pos  model neg
    #   person pos         4          1  (r13)    5
    #   person neg         1 (r03)    4           5
    # p_o = 8/10, p_e = (5*5 + 5*5)/100 = 0.5, kappa = (0.8 - 0.5) / 0.5 = 0.6
    result = calibrate(labelled)
    assert result is not None and result.decisions == 15
    (labeller,) = result.labellers
    agreement = labeller.agreement
    assert (agreement.n, agreement.kappa, agreement.observed) == (10, 0.6, 0.8)
    assert agreement.low is not None and agreement.high is not None
    assert agreement.low <= 0.6 <= agreement.high
    assert labeller.left_out == {"rejected by a person": 5}  # r04 r06 r10 r11 r12


def test_the_judge_against_people_and_its_best_threshold_by_hand(labelled: Path) -> None:
    # accept = keep, reject = drop; r03 and r13 were corrected, so left out; r07 is undecided.
    # keep: r00 5, r01 5, r02 4, r05 3, r08 5, r09 4, r14 2, r15 5   drop: r04 2, r06 1, r10 4,
    # r11 2, r12 1. n = 13, the person keeps 8 and drops 5.
    # At the spec's threshold 4 the judge keeps r00 r01 r02 r08 r09 r15 r10 (7):
    #   kk 6, person drop / judge keep 1, person keep / judge drop 2, dd 4
    #   p_o = 10/13, p_e = (8*7 + 5*6)/169 = 86/169, kappa = (130 - 86)/(169 - 86) = 44/83
    # At 3 it also keeps r05: kk 7, dk 1, kd 1, dd 4
    #   p_o = 11/13, p_e = (8*8 + 5*5)/169 = 89/169, kappa = (143 - 89)/(169 - 89) = 54/80
    # (at 2: 32/71, at 5: 40/92, at 1: 0), so 3 is the best threshold.
    result = calibrate(labelled)
    assert result is not None
    (judge,) = result.judges
    assert judge.threshold == 4.0 and judge.agreement.n == 13
    assert judge.agreement.kappa == pytest.approx(44 / 83, abs=1e-4)
    assert judge.left_out == {"corrected by a person": 2}
    assert judge.best is not None and judge.best["threshold"] == 3.0
    assert judge.best["agreement"]["kappa"] == pytest.approx(54 / 80, abs=1e-4)
    # recall on kept 7/8, on dropped 4/5
    assert judge.best["balanced_accuracy"] == pytest.approx((7 / 8 + 4 / 5) / 2, abs=1e-4)


def test_position_and_length_bias_of_pairwise_verdicts(tmp_path: Path) -> None:
    # Six pairs: three consistent (two won by the longer answer, one by the shorter), one where
    # the first-shown always wins, one where the second-shown always wins, one tie.
    # Verdicts without a tie: 2 * 5 = 10; first-shown wins: 3 (one per consistent pair) + 2 = 5.
    result = calibrate(pairwise_run(tmp_path))
    assert result is not None
    (bias,) = result.pairwise
    assert (bias.pairs, bias.ties, bias.inconsistent) == (6, 1, 2)
    assert (bias.position.hits, bias.position.n, bias.position.share) == (5, 10, 0.5)
    assert bias.position.low == pytest.approx(0.2366, abs=1e-4)  # Wilson, 5 of 10
    assert (bias.length.hits, bias.length.n, bias.length.share) == (2, 3, None)
    assert bias.length.note == "not enough preferences (n=3, need 10)"
    rows = figure_rows(result.to_dict())
    assert rows[0][:2] == ("judge: first-shown wins", "0.5 [0.237, 0.763]")
    assert "2 of 3 kept preferences" in rows[1][2]


def test_too_few_decisions_are_said_plainly(tmp_path: Path) -> None:
    out = labelled_run(tmp_path, decide=False)
    assert calibrate(out) is None  # nobody decided yet
    DecisionStore.of_run(out).record_many(
        Decision(i, "accept", by="ada") for i in ("r00", "r08", "r10")
    )
    result = calibrate(out)
    assert result is not None
    for agreement in (result.labellers[0].agreement, result.judges[0].agreement):
        assert agreement.kappa is None and agreement.note == "not enough decisions (n=3, need 10)"
    assert result.judges[0].best is None
    assert figure_rows(result.to_dict())[0] == (
        "label: label kappa",
        "not enough decisions (n=3, need 10)",
        "n=3",
    )


def test_shares_need_enough_verdicts() -> None:
    assert Share.of(3, 4, "verdicts").note == "not enough verdicts (n=4, need 10)"
    share = Share.of(8, 10, "verdicts")
    assert (share.share, share.low, share.high) == (0.8, 0.4902, 0.9433)


class HashEmbedder(MemoEmbedder):
    """Vectors from a seeded generator per text: the report needs some, not good ones."""

    def encode(self, texts: Sequence[str]) -> Any:
        rows = [np.random.default_rng(zlib.crc32(t.encode())).normal(size=384) for t in texts]
        vectors = np.asarray(rows, dtype=np.float32).reshape(len(texts), 384)
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-9)


def test_the_report_and_the_card_show_the_figures(labelled: Path, tmp_path: Path) -> None:
    evaluation = evaluate_dataset(
        labelled, detector=make_detector("regex"), embedder=HashEmbedder(), utility_models=()
    )
    assert evaluation.metrics["calibration"]["judges"][0]["best"]["threshold"] == 3.0
    paths = write_report(evaluation, tmp_path / "report")
    page = paths["report"].read_text()
    card = paths["card"].read_text()
    assert "<h2>Judges against people</h2>" in page and "## Judges against people" in card
    for figure, value, detail in figure_rows(evaluation.metrics["calibration"]):
        assert figure in page and value in page and detail in page
        assert f"| {figure} | {value} | {detail} |" in card
    assert '<td>label: label kappa</td><td class="num">0.6 [' in page
    assert "| judge: best threshold | 3 (kappa 0.675 [" in card


def test_no_decisions_no_section(tmp_path: Path) -> None:
    out = labelled_run(tmp_path, decide=False)
    evaluation = evaluate_dataset(
        out, detector=make_detector("regex"), embedder=HashEmbedder(), utility_models=()
    )
    assert "calibration" not in evaluation.metrics
    paths = write_report(evaluation, tmp_path / "report")
    assert "Judges against people" not in paths["report"].read_text()
    assert "Judges against people" not in paths["card"].read_text()


@pytest.mark.slow
def test_calibration_of_the_embedded_model(tmp_path: Path) -> None:
    import json

    import datarefinery
    from tests.support.specs import SENTIMENT_TASK

    reviews = [
        ("A warm, funny film; I loved every minute of it.", "positive"),
        ("Dull and far too long. I walked out.", "negative"),
        ("The cast is superb and the story moving.", "positive"),
        ("Flat jokes, muddy sound, a waste of time.", "negative"),
        ("An easy evening to recommend to anyone.", "positive"),
        ("Nobody could care about these characters.", "negative"),
        ("Beautiful images and lovely music.", "positive"),
        ("The twist is obvious and the pace drags.", "negative"),
        ("My whole family laughed from start to end.", "positive"),
        ("Stiff dialogue that nobody read out loud.", "negative"),
    ]
    source = tmp_path / "in.jsonl"
    source.write_text(
        "".join(json.dumps({"id": f"r{i}", "text": t}) + "\n" for i, (t, _) in enumerate(reviews))
    )
    spec = {
        "name": "calibration-embedded",
        "seed": 1,
        "task": SENTIMENT_TASK,
        "llm": {"max_tokens": 64, "n_ctx": 1024, "n_threads": 1},
        "input": str(source),
        "steps": [{"label": {"k": 1}}, {"judge": {"reason_chars": 40}}],
    }
    out = tmp_path / "run"
    assert datarefinery.run(spec, out, diversity=False).status == "complete"
    labels = {r.id: r.fields["label"] for r in datarefinery.read_records(out / "dataset.jsonl")}
    # The person: the true label, and every third review rejected as a poor example.
    decisions = [
        Decision(f"r{i}", "reject", by="ada", reason="too short")
        if i % 3 == 0
        else Decision(f"r{i}", "accept", by="ada")
        if labels.get(f"r{i}") == truth
        else Decision(f"r{i}", "correct", by="ada", label=truth)
        for i, (_, truth) in enumerate(reviews)
    ]
    DecisionStore.of_run(out).record_many(decisions)
    result = calibrate(out)
    assert result is not None and result.decisions == 10
    kept = [r.id for r in datarefinery.read_records(out / "dataset.jsonl")]
    assert result.labellers[0].agreement.n == sum(1 for d in decisions if d.action != "reject")
    judged = [d for d in decisions if d.action in ("accept", "reject") and d.record_id in kept]
    assert result.judges[0].agreement.n == len(judged)
    assert len(figure_rows(result.to_dict())) >= 2


def test_each_criterion_gets_its_best_threshold() -> None:
    from datarefinery.evaluate.calibration import _judge
    from datarefinery.records import Record

    # fluency separates the people's keep (4, 5) from their drop (1, 2) at 4; label_fit is noise.
    rows = [(f"r{i}", i < 6, 5 - i % 2 if i < 6 else 1 + i % 2, 1 + i % 5) for i in range(12)]
    records = [
        Record(
            rid,
            {"text": "t"},
            scores={
                "judge": (f + g) / 2,
                "judge_fluency": f,
                "judge_label_fit": g,
                "judge_reason": "r",
            },
        )
        for rid, _, f, g in rows
    ]
    decisions = {
        rid: Decision(rid, "accept" if keep else "reject", by="ada") for rid, keep, _, _ in rows
    }
    result = _judge("judge", records, 3.0, decisions)
    assert set(result.criteria) == {"fluency", "label_fit"}
    fluency = result.criteria["fluency"]
    assert fluency["threshold"] == 4.0 and fluency["agreement"]["kappa"] == 1.0
    assert result.criteria["label_fit"]["agreement"]["kappa"] < 0.5
    rows_shown = figure_rows({"judges": [asdict(result)]})
    assert any(figure == "judge (fluency): best threshold" for figure, _, _ in rows_shown)
