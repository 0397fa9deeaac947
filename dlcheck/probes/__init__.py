"""Child-process probe scripts (run by path; they import nothing from dlcheck)."""
