"""One module per check: its code, name, severity and documentation, and for semantic checks a
``check`` function. Checks of file errors (SR0xx, SR1xx) report what the rule-file reader finds."""
