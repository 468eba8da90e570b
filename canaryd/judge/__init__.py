"""The statistical judge: compares the canary's time series of a metric with the primary's, classifies
each metric as Kayenta's Mann-Whitney classifier does and scores them into a verdict (docs/judge.md).

Pure Python and pure functions: no I/O, no clock, no randomness, no numpy; samples are small."""
