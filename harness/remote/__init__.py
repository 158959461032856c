"""Talking to a host's agent: the agent bundle shipped to it (bundle), one agent session
over a transport (session), and probing hosts and interpreters (probing)."""
