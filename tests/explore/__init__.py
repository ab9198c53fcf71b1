"""The fault-schedule explorer: every orchestration tree under every single fault, with real activities."""
