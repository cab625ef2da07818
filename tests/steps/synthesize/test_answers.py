import pytest

from datarefinery.steps.synthesize.answers import check_answer, final_answer, read_reference


@pytest.mark.parametrize(
    ("candidate", "reference"),
    [
        ("18", "18"),
        ("$18.00", "18"),
        ("18 dollars", "$18"),
        ("The answer is 1,000 apples.", "1000"),
        ("1,000", "1,000"),
        ("12.0 km", "12"),
        ("3/4", "0.75"),
        ("0.75", "3/4"),
        ("6/8", "3/4"),
        ("75%", "75"),
        ("75%", "0.75"),
        ("0.75", "75%"),
        ("50 percent", "50%"),
        ("-2", "-2"),
        ("−3", "-3"),
        ("he ends 5-7 up, so 7", "7"),
        ("We add 4 + 4 = 8, then 8 * 30 = 240\n#### 240", "240"),
        ("\\boxed{5}", "5"),
        ("The answer is: $18.", "reasoning first <<3*6=18>>\n#### 18"),
        ("(B)", "b"),
        ("B) Paris", "answer: b"),
        ("b", "(B)"),
        ("The answer is C", "C)"),
        ("Option d", "D"),
        ("Paris.", "paris"),
        ("  New   York ", "new york"),
    ],
)
def test_these_match(candidate: str, reference: str) -> None:
    verdict = check_answer(candidate, reference)
    assert verdict.matched, (verdict.got, verdict.expected)


@pytest.mark.parametrize(
    ("candidate", "reference"),
    [
        ("17", "18"),
        ("0.7", "3/4"),
        ("1,8", "18"),  # two numbers, not a thousands separator
        ("5-7", "-7"),  # a range, not a negative number
        ("The answer is C", "B"),
        ("Lyon", "Paris"),
        ("3.14", "3.14159"),
    ],
)
def test_these_do_not(candidate: str, reference: str) -> None:
    verdict = check_answer(candidate, reference)
    assert not verdict.matched
    assert verdict.got is not None


def test_a_candidate_with_no_answer_of_the_reference_s_kind_reads_as_none() -> None:
    assert check_answer("fifteen", "15").got is None
    assert check_answer("I am not sure", "B").got is None
    assert check_answer("   ", "Paris").got is None


def test_the_reference_decides_the_kind() -> None:
    assert read_reference("18").kind == "number"
    assert read_reference("$1,200.50").kind == "number"
    assert read_reference("(C)").kind == "choice"
    assert read_reference("answer: c").kind == "choice"
    # A text answer that holds a number stays text: "Paris 2024" is not 2024.
    assert read_reference("Paris 2024").kind == "text"
    assert read_reference("1 2 3").kind == "text"


def test_tolerance_is_relative_for_decimals() -> None:
    assert check_answer("3.1416", "3.14159", tolerance=1e-4).matched
    assert not check_answer("3.1416", "3.14159").matched


def test_shown_forms_are_short_and_readable() -> None:
    verdict = check_answer("I got $1,234.50", "2469/2")
    assert verdict.matched
    assert verdict.got is not None and verdict.got.shown == "1234.5"
    assert check_answer("1/3", "1/3").expected.shown == "1/3"
    assert check_answer("76.8", "7").got.shown == "76.8"  # type: ignore[union-attr]
    assert check_answer("75%", "75%").expected.shown == "75%"


def test_final_answer_takes_the_last_marker_or_lead_in() -> None:
    assert final_answer("a #### 3") == "3"
    assert final_answer("First answer: 2. Final answer: 4") == "4"
    assert final_answer("x = \\boxed{7} then \\boxed{9}") == "9"
    assert final_answer("just 5") == "just 5"
    assert final_answer("The answer is") == "The answer is"
