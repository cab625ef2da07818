from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from datarefinery.embeddings import Embedder
from datarefinery.errors import UsageError
from datarefinery.evaluate.detox import GateScorer, score_similarity
from datarefinery.llm.base import Request
from datarefinery.llm.scripted import ScriptedBackend
from datarefinery.loop.detox_eval import evaluate_detox
from tests.evaluate.test_toxicity_scorers import pairs


def _pairs_file(path: Path) -> Path:
    path.write_text(
        "".join(
            json.dumps({"id": i, "toxic": t, "neutral_references": refs}) + "\n"
            for i, t, refs in pairs()
        )
    )
    return path


STUBBORN = "the bus was late again this morning"  # its rewrites stay toxic: rejected


def _polite(request: Request) -> str:
    """The topic of the fixture's toxic sentence in the prompt, without the insult."""
    if "same_meaning" in str(request.json_schema):  # the meaning judge agrees
        return json.dumps({"reason": "The same point, politely.", "same_meaning": True})
    prompt = "\n".join(m.content for m in request.messages)  # a re-ask carries the first
    for _, toxic, refs in pairs():
        if toxic in prompt:
            if refs[0] == STUBBORN:
                return json.dumps({"text": f"{STUBBORN}, you fucking idiots"})
            return json.dumps({"text": refs[0]})
    raise AssertionError(f"no fixture sentence in {prompt!r}")


def test_gate_scorer_is_labelled_gate_unless_the_step_gates_on_the_llm() -> None:
    assert GateScorer().describe()["role"] == "gate"
    assert "alt-profanity-check" in GateScorer().describe()["model"]
    assert GateScorer(is_gate=False).describe()["role"].startswith("offline, not the gate")
    toxic, polite = GateScorer().score(["you fucking idiot", "have a nice day"])
    assert toxic > 0.5 > polite


@pytest.mark.slow  # loads the embedding model
def test_score_similarity_on_a_hand_made_pair() -> None:
    figures = score_similarity(
        ["this movie is fucking shit"],
        ["this movie is very bad"],
        [["this movie is bad"]],
        Embedder(),
    )
    assert figures["similarity_to_reference"] > 0.8
    assert figures["unchanged"] == 0


@pytest.mark.slow  # loads the embedding model (meaning check, similarity, minilm_lr)
def test_eval_detox_reports_independent_scorers_and_never_measures_the_reserve(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = _pairs_file(tmp_path / "pairs.jsonl")
    result = evaluate_detox(
        source,
        tmp_path / "work",
        llm={"model": "default"},
        reserve=14,
        backend=ScriptedBackend(_polite),
    )
    reserved = (tmp_path / "work" / "reserved_ids.txt").read_text().split()
    measured = [
        json.loads(x)["id"] for x in (tmp_path / "work" / "input.jsonl").read_text().splitlines()
    ]
    assert len(reserved) == 14 and len(measured) == 10 == result["records"]
    stubborn = sum(
        STUBBORN in json.loads(x)["text"]
        for x in (tmp_path / "work" / "input.jsonl").read_text().splitlines()
    )
    assert stubborn == 1  # fixed by the id hash: one of the two bus rows is measured
    assert not set(reserved) & set(measured)
    assert result["reserve"]["rows"] == 14 and result["reserve"]["measured_from"] == 10

    scorers = result["scorers"]
    assert list(scorers) == ["profanity_check", "tfidf_lr", "minilm_lr"]
    assert scorers["profanity_check"]["role"] == "gate"
    assert scorers["tfidf_lr"]["role"] == scorers["minilm_lr"]["role"] == "independent"
    assert "all-MiniLM-L6-v2" in scorers["minilm_lr"]["model"]
    assert scorers["tfidf_lr"]["trained_on"]["rows"] + 5 == 14  # a third held out to calibrate
    groups = ("input", "detox_rewrite", "detox_rewrite_changed", "detox_rewrite_emitted")
    for texts in (*groups, "human_reference"):
        assert set(result["toxicity"][texts]) == {"count", *scorers}
    # the stubborn row's rewrite and its re-ask both stay toxic; the judge stops none
    stopped = result["methods"]["detox_rewrite"]["rewrites_stopped_by_check"]
    assert stopped["toxicity"] == 2 and stopped["judge"] == 0
    # The scripted rewrites drop the insult: every scorer sees them cleaner than the inputs.
    for name in scorers:
        before, after = result["toxicity"]["input"][name], result["toxicity"]["detox_rewrite"][name]
        assert before["non_toxic"] <= 0.2 and after["non_toxic"] >= 0.7
        assert after["mean_toxicity"] < before["mean_toxicity"]
    changed = result["toxicity"]["detox_rewrite_changed"]
    assert changed["count"] == 9 and changed["profanity_check"]["non_toxic"] == 1.0
    figures = result["methods"]["detox_rewrite"]
    assert figures["unchanged"] == 1 and figures["rejected_by_reason"] == {"still_toxic": 1}
    assert result["toxicity"]["detox_rewrite_emitted"]["count"] == 9  # the rejected one left out

    from datarefinery.cli import refine
    from datarefinery.cli.refine import print_detox

    buffer = io.StringIO()
    monkeypatch.setattr(refine, "console", Console(file=buffer, width=240))
    print_detox(result)
    printed = buffer.getvalue()
    assert "reserved 14 rows" in printed and "measured on the other 10" in printed
    assert "profanity_check (gate, < 0.5)" in printed and "detox_rewrite_changed (9)" in printed
    assert "detox_rewrite_emitted (9)" in printed
    assert "tfidf_lr (independent" in printed and "minilm_lr (independent" in printed
    assert "stopped by each check (re-asked or rejected): toxicity 2, cosine 0, judge 0" in printed


def test_eval_detox_refuses_a_reserve_that_leaves_nothing(tmp_path: Path) -> None:
    source = _pairs_file(tmp_path / "pairs.jsonl")
    with pytest.raises(UsageError, match="lower --reserve"):
        evaluate_detox(source, tmp_path / "work", llm={"model": "default"}, reserve=24)
