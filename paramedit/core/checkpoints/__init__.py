"""Checkpoint files: formats and detection, containers and prefixes, tied aliases, memory mapping
and reads through the file, pickle and torch safety, DCP, atomic and sharded saving, save plans."""
