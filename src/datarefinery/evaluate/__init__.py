"""Dataset metrics: diversity, and (later) fidelity, utility and privacy."""
