from datarefinery.detect.regex import RegexPIIDetector
from datarefinery.evaluate.privacy import (
    known_value_leaks,
    pii_found,
    source_pii_leaks,
    verbatim_overlap,
)

SOURCE = [
    "The quick brown fox jumps over the lazy dog near the river bank today.",
    "Write to john.doe@example.com or call 555-867-5309 after noon.",
]


def test_verbatim_overlap_hand_checked() -> None:
    texts = ["I saw that the Quick brown  fox jumps over the lazy dog, and laughed.", "no overlap"]
    result = verbatim_overlap(texts, SOURCE, ids=["a", "b"], source_ids=["s0", "s1"])
    # "the quick brown fox jumps over the lazy dog" = 43 characters of the 68 the text has
    # once its double space is collapsed
    assert result["max_lcs_chars"] == 43
    assert result["max_lcs_ratio"] == round(43 / 68, 4)
    assert result["records_with_span"] == 0 and result["share_with_50char_span"] == 0.0
    assert result["longest"] == [{"record": "a", "source": "s0", "chars": 43, "ratio": 0.6324}]
    copied = verbatim_overlap([SOURCE[0]], SOURCE)
    # spans run from the first to the last word: the final "." is not counted (69 of 70)
    assert copied["records_with_span"] == 1 and copied["max_lcs_ratio"] == round(69 / 70, 4)


def test_pii_and_leaks_report_counts_not_values() -> None:
    detector = RegexPIIDetector()
    found = pii_found(["mail x@y.org", "nothing", "call 555-867-5309"], detector)
    assert found["records_with_pii"] == 2
    assert found["spans_by_type"] == {"EMAIL_ADDRESS": 1, "PHONE_NUMBER": 1}
    leaks = source_pii_leaks(["Ask JOHN.DOE@example.com", "fine"], SOURCE, detector)
    assert leaks == {"source_pii_values": 2, "values_leaked": 1, "records_with_leak": 1}
    known = known_value_leaks(["Jane Roe lives here", "Bo"], ["jane roe", "Bo"])
    assert known == {"values_checked": 1, "values_leaked": 1, "records_with_leak": 1}
    assert "john" not in str(leaks) and "jane" not in str(known)
