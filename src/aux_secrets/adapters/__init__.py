"""Adapters: files, subprocesses, prompts and clocks, each small, around the pure core."""
