pytest_plugins = ["streamkit.testing.pytest_plugin"]
