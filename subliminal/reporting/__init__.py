"""Reporting: README.md and docs/*.md regenerated from the committed CSVs (`make report`)."""
