"""The AT grammar (at.lark): package data, shipped as emulator/grammar (see pyproject.toml)."""
