"""Tests of the pure core (`clearinghouse`): the rules, margin models, liquidation, lending, digests."""
