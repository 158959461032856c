"""Ansible action plugins harness hands ansible-playbook (``ANSIBLE_ACTION_PLUGINS``).

They run inside ansible-playbook's worker processes on the controller, one worker per
host and task, and use only Ansible's connection to the host: no Ansible module (and
so no Python for Ansible) runs on the host. :mod:`harness_agent` is the ansible
engine's one action.
"""

from pathlib import Path

ACTION_PLUGIN_DIR = Path(__file__).resolve().parent
