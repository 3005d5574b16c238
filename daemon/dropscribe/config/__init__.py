"""Settings: the YAML file read, validated and located (settings.load), and the per-folder
rules that say which files are ours and with which settings (rules)."""
