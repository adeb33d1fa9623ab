"""The report: one self-contained HTML file, Markdown and JSON, and its plots."""
