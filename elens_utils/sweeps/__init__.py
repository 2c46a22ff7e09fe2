"""Profiles of many models and prompts: the on-disk cache, sweeps on one process or many."""
