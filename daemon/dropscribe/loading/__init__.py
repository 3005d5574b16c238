"""The config as the daemon runs with it: ``config/`` parses the file, and
``checked.load`` adds what only the engines know (what each endpoint kind and model
can do, the voice clips a folder holds) and has the keys blanked in the logs;
``reloading.reread`` is SIGHUP's."""
