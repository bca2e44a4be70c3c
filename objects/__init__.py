"""The built-in OMA DDF object models (*.xml): package data, shipped as emulator/objects (see pyproject.toml)."""
