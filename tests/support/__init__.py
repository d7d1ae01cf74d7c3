"""Helpers shared by the tests (no test file imports another): wire-line builders and the `Book`
(`rulebook`), the index/full-scan engine pair (`pair`), hand-worked portfolio-margin setups
(`borrower`, `pm`), refusals proven to change nothing (`rejecting`), shared streams (`streams`),
the CLI as a subprocess (`cli`) and `clearinghouse serve` as a user runs it (`served`)."""
