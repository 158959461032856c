"""Transports: how the controller reaches a host (local subprocess, SSH, Ansible)."""

from harness.transport.base import Transport

__all__ = ["Transport"]
