"""Transports: they turn bytes into calls on the chat core and pushes into bytes, nothing else."""
