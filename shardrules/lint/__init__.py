"""rule-lint: checks for rule files."""
