from pathlib import Path

import pytest

from datarefinery.errors import UsageError
from datarefinery.models.smallmodel import accuracy, make_small_model
from datarefinery.records import Record

POSITIVE = ["great film", "loved it", "wonderful acting", "a great joy", "loved the story"]
NEGATIVE = ["awful film", "hated it", "terrible acting", "a boring mess", "hated the story"]


def records(texts: list[str], label: str) -> list[Record]:
    return [
        Record(id=f"{label}{i}", fields={"text": t, "label": label}) for i, t in enumerate(texts)
    ]


def test_tfidf_lr_learns_a_separable_task() -> None:
    train = records(POSITIVE, "pos") + records(NEGATIVE, "neg")
    model = make_small_model("tfidf-lr", ["text"]).fit(train)
    assert model.classes_ == ["neg", "pos"]
    test = records(["great acting"], "pos") + records(["terrible story"], "neg")
    assert accuracy(model, test) == 1.0
    proba = model.predict_proba(test)
    assert proba.shape == (2, 2) and abs(float(proba.sum()) - 2.0) < 1e-9


def test_pairs_are_encoded_jointly() -> None:
    pairs = [
        Record(id=str(i), fields={"premise": p, "hypothesis": h, "label": y})
        for i, (p, h, y) in enumerate(
            [
                ("the cat sat on the mat", "the cat sat", "entailment"),
                ("a dog ran in the park", "a dog ran", "entailment"),
                ("the sun is hot", "the sun is hot today", "entailment"),
                ("the cat sat on the mat", "birds fly south", "not_entailment"),
                ("a dog ran in the park", "the stock market fell", "not_entailment"),
                ("the sun is hot", "pianos have keys", "not_entailment"),
            ]
        )
    ]
    model = make_small_model("tfidf-lr", ["premise", "hypothesis"]).fit(pairs)
    assert model.predict(pairs) == [str(r.fields["label"]) for r in pairs]


def test_one_label_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="fewer than two labels"):
        make_small_model("tfidf-lr", ["text"]).fit(records(POSITIVE, "pos"))


@pytest.mark.slow
def test_embedding_lr_generalizes_past_shared_words() -> None:
    train = records(POSITIVE, "pos") + records(NEGATIVE, "neg")
    model = make_small_model("embedding-lr", ["text"]).fit(train)
    test = records(["an excellent, delightful movie"], "pos") + records(
        ["dreadful and dull"], "neg"
    )
    assert accuracy(model, test) == 1.0


@pytest.mark.slow
def test_transformer_fine_tune_learns_a_separable_task() -> None:
    from datarefinery.models.finetune import TransformerClassifier

    train = records(POSITIVE, "pos") + records(NEGATIVE, "neg")
    model = TransformerClassifier(["text"], epochs=8, batch_size=10, learning_rate=1e-4).fit(train)
    assert model.classes_ == ["neg", "pos"]
    test = records(["great acting"], "pos") + records(["terrible story"], "neg")
    assert accuracy(model, test) == 1.0
    proba = model.predict_proba(test)
    assert proba.shape == (2, 2) and abs(float(proba.sum()) - 2.0) < 1e-6


def test_transformer_without_local_weights_says_so(tmp_path: Path) -> None:
    from datarefinery.errors import ModelNotFoundError
    from datarefinery.models.finetune import TransformerClassifier

    with pytest.raises(ModelNotFoundError, match="only loads local weights"):
        TransformerClassifier(["text"], weights=str(tmp_path))


def test_options_reach_the_models() -> None:
    from datarefinery.models.finetune import TransformerClassifier
    from datarefinery.models.smallmodel import LinearModelOptions, TfidfLR, TransformerOptions

    linear = make_small_model(LinearModelOptions(kind="tfidf-lr", c=0.05), ["text"])
    assert isinstance(linear, TfidfLR) and linear.c == 0.05
    linear.fit(records(POSITIVE, "pos") + records(NEGATIVE, "neg"))
    assert linear._clf.C == 0.05
    options = TransformerOptions(
        kind="transformer", epochs=1, learning_rate=1e-4, batch_size=4, max_length=32
    )
    model = make_small_model(options, ["text"], seed=3)
    assert isinstance(model, TransformerClassifier)
    assert (model.epochs, model.learning_rate, model.batch_size, model.max_length, model.seed) == (
        1,
        1e-4,
        4,
        32,
        3,
    )
    assert (model.path / "config.json").is_file()  # 'minilm': the bundled weights
