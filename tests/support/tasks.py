"""Read playbooks and task files as data: the arguments of every call of a given module or action."""

from __future__ import annotations

import yaml


def calls(node, action):
    """The argument mappings of every call of ``action`` (short or FQCN name) in a parsed playbook or task file."""
    if isinstance(node, list):
        for item in node:
            yield from calls(item, action)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key.split(".")[-1] == action and isinstance(value, dict):
                yield value
            else:
                yield from calls(value, action)


def file_calls(paths, action):
    """``calls`` over every file of ``paths``."""
    for path in paths:
        yield from calls(yaml.safe_load(path.read_text(encoding="utf-8")), action)


def included_task_files(paths):
    """(role short name, tasks_from) of every include_role / import_role with tasks_from in ``paths``."""
    for action in ("include_role", "import_role"):
        for args in file_calls(paths, action):
            if args.get("tasks_from"):
                yield str(args["name"]).rsplit(".", 1)[-1], args["tasks_from"]
