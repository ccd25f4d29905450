"""A small Dockerfile reader: instructions with continuation lines joined, ARG defaults applied."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

VARIABLE = re.compile(r"\$\{?(\w+)\}?")


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str


@dataclass(frozen=True)
class Stage:
    base: str  # the image (ARG defaults substituted) or an earlier stage's name
    name: str | None
    instructions: list[Instruction]

    def all(self, keyword: str) -> list[str]:
        return [i.arguments for i in self.instructions if i.keyword == keyword]


def instructions(path: Path) -> list[Instruction]:
    logical: list[str] = []
    pending = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):  # a comment inside a continued instruction
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    result = []
    for line in logical:
        keyword, _, arguments = line.partition(" ")
        result.append(Instruction(keyword.upper(), arguments.strip()))
    return result


def stages(path: Path) -> list[Stage]:
    """The build stages, each FROM resolved with the global ARG defaults declared before it."""
    global_args: dict[str, str] = {}
    found: list[Stage] = []
    for instruction in instructions(path):
        if instruction.keyword == "ARG" and not found:
            name, _, default = instruction.arguments.partition("=")
            global_args[name] = default
        elif instruction.keyword == "FROM":
            words = [w for w in instruction.arguments.split() if not w.startswith("--")]
            base = VARIABLE.sub(lambda m: global_args.get(m[1], m[0]), words[0])
            stage_name = words[2] if len(words) > 2 and words[1].upper() == "AS" else None
            found.append(Stage(base, stage_name, []))
        elif found:
            found[-1].instructions.append(instruction)
    return found
