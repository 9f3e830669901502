"""``kpnet demo``: three national nodes on this machine, peered and seeded with invented
records, playing a short regional scenario (see ``scenario``)."""
