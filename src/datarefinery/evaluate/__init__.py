"""Dataset metrics -- diversity, fidelity, utility, privacy -- and the report that shows them.

``evaluate_dataset`` computes what its inputs allow; ``write_report`` writes metrics.json,
report.html and card.md.
"""

from datarefinery.evaluate.report.write import write_report
from datarefinery.evaluate.suite import Evaluation, load_dataset
from datarefinery.evaluate.suite import evaluate as evaluate_dataset

__all__ = ["Evaluation", "evaluate_dataset", "load_dataset", "write_report"]
