"""``kubectl canary`` and its dashboard: what a person running releases sees, read from the API server
with their own kubeconfig (never from canaryd itself)."""
