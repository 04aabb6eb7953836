"""An example funcbench plugin: its targets live in `funcbench_plugin_example.targets`.

funcbench finds that module through the entry point in pyproject.toml; nothing
here needs importing by hand.
"""
