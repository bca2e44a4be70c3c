"""Scenario files (TOML): steps on the module clock that act as the host and check what the module says."""
