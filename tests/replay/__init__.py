"""Tests of `replay` (state at a point, verify, audit, guided replay) and the workload generator."""
