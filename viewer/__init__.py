"""The one-map web page and the standalone HTML map exports."""
