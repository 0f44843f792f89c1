"""sdflow's built-in node packs."""

NODES: list[type] = []
