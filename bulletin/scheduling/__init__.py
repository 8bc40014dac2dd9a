"""Pure scheduling logic: wall-clock rules in IANA zones turned into UTC fire instants."""
