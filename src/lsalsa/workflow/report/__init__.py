"""Reports drawn from stored results only: figures, tables, report.md and report.html."""
