"""``--help`` of the Hydra entry points, answered before torch and Hydra load (well under a second).

Each entry module (``train.dagger``, ``train.supervised``, ``train.ppo``, ``train.evaluate``) calls
:func:`exit_on_help` first when run as ``__main__``. The help lists every option of ``configs/<name>.yaml`` and of
the default file of each config group (``env``, ``model``, ``train``) as ``key=value  # comment``, the comments
taken from the YAML lines (``key: value   # comment``, and comment lines continuing it below), plus each group's
choices. Read with the standard library only: the files are the suite's own, one ``key: value`` per line.
"""

from __future__ import annotations

import sys
from pathlib import Path

from configs import CONFIG_DIR

HELP_FLAGS = ("--help", "-h")


def exit_on_help(config_name: str, argv: list[str] | None = None) -> None:
    """Print :func:`help_text` and exit 0 when the command line asks for ``--help`` / ``-h``; otherwise return."""
    if any(arg in HELP_FLAGS for arg in (sys.argv[1:] if argv is None else argv)):
        print(help_text(config_name))
        sys.exit(0)


def options(path: Path, prefix: str = "") -> tuple[list[str], list[tuple[str, str, str]], list[tuple[str, str, str]]]:
    """A config file's leading comment lines, its options as (dotted key, value, comment) and its defaults list
    as (group, choice, comment); the ``hydra`` section and the defaults' ``override`` entries are left out."""
    header: list[str] = []
    found: list[tuple[str, str, str]] = []
    defaults: list[tuple[str, str, str]] = []
    parents: list[tuple[int, str]] = []  # (indent, key) of the mappings the current line is inside
    section = ""
    comment_column = -1  # where the comment of the option on the line above starts (-1: no such comment)
    for line in path.read_text().splitlines():
        text = line.strip()
        indent = len(line) - len(line.lstrip())
        if not text.startswith("#"):  # a blank line or another option ends a comment's continuation
            comment_column = -1
        if not text:
            continue
        if text.startswith("#"):
            if not found and not parents and not defaults:
                header.append(text.lstrip("# ").rstrip())
            elif comment_column >= 0 and indent == comment_column:
                key, value, comment = found[-1]  # a comment line continuing the option above, aligned with its comment
                found[-1] = (key, value, f"{comment} {text.lstrip('# ')}")
            continue
        while parents and parents[-1][0] >= indent:
            parents.pop()
        if indent == 0:
            section = text.split(":", 1)[0]
        if section == "defaults":
            entry = text.removeprefix("- ")
            if text.startswith("- ") and ":" in entry and not entry.startswith("override "):
                group, rest = (part.strip() for part in entry.split(":", 1))
                choice, _, comment = rest.partition(" #")
                defaults.append((group, choice.strip(), comment.strip()))
            continue
        if section == "hydra" or ":" not in text:
            continue
        key, rest = (part.strip() for part in text.split(":", 1))
        value, _, comment = rest.partition(" #")
        dotted = ".".join([prefix, *(k for _, k in parents), key] if prefix else [*(k for _, k in parents), key])
        if value.strip():
            found.append((dotted, value.strip(), comment.strip()))
            comment_column = line.find(" #", line.index(":")) + 1 if comment.strip() else -1
        else:  # a mapping: its keys follow, indented
            parents.append((indent, key))
            if comment.strip():
                found.append((dotted, "", comment.strip()))
    return header, found, defaults


def help_text(config_name: str) -> str:
    """The help of ``python -m train.<entry>``: usage, config groups and every option with its comment."""
    header, found, defaults = options(CONFIG_DIR / f"{config_name}.yaml")
    lines = [*header, "", "Overrides are Hydra's: key=value (key.sub=value), group=choice; -m key=a,b,... runs one job per "
             "value (train.supervised / train.dagger / train.ppo: each in its own out). Unknown keys and wrong types "
             "are refused at start-up.", ""]
    if defaults:
        lines.append("Config groups (group=choice):")
        for group, choice, comment in defaults:
            choices = sorted(p.stem for p in (CONFIG_DIR / group).glob("*.yaml"))
            lines.append(f"  {group}: {', '.join(choices)} (default {choice})" + (f"  # {comment}" if comment else ""))
        lines.append("")
    sections = [(f"{config_name}.yaml", found)]
    for group, choice, _ in defaults:
        if (CONFIG_DIR / group / f"{choice}.yaml").is_file():
            sections.append((f"{group}/{choice}.yaml", options(CONFIG_DIR / group / f"{choice}.yaml", group)[1]))
    for title, entries in sections:
        lines.append(f"Options of {title}:")
        width = max((len(f"{key}={value}") for key, value, _ in entries), default=0)
        for key, value, comment in entries:
            option = f"{key}={value}" if value else f"{key}.*"
            lines.append(f"  {option:<{width}}  # {comment}" if comment else f"  {option}")
        lines.append("")
    return "\n".join(lines).rstrip()
