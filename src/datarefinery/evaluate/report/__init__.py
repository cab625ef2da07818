"""The evaluation report: an HTML page (inline SVG charts, nothing fetched) and a dataset card."""
