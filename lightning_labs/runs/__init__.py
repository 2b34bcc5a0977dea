"""Reading finished runs back (no torch needed): discovery, TensorBoard events, the compare table,
the report and their plots."""
