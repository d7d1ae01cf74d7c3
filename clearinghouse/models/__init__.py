"""Margin models: the protocol (`base`), one module per model, and the registry by account mode."""
