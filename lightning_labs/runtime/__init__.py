"""What every command's run stands on: configs, the command entry, logging, console output, errors,
the environment, output folders and launch checks.

``entry``, ``config``, ``errors``, ``logs`` and ``launch`` load without torch, so a mistyped
command is refused before the training stack is imported.
"""
