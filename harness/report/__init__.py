"""Layer 6: tables, plots and the HTML/Markdown report from stored results (nothing is re-run)."""
