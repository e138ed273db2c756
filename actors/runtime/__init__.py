"""How the service's processes behave on a Ray node: CPU priority and memory."""
