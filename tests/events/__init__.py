"""Tests of `events`: the codec and its bounds, the file log, storage errors and faults."""
