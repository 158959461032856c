"""Transports: how the controller reaches a host. ``base`` holds the Transport protocol,
``streams`` the line streaming shared by every transport, ``local`` (a subprocess) and
``ssh`` (paramiko) the two kinds, ``factory`` picks one for a host."""
