"""A small Dockerfile reader: instructions with continuation lines joined, ARG values applied,
and the stages one ``--target`` builds."""

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


def stages(path: Path, build_args: dict[str, str] | None = None) -> list[Stage]:
    """The build stages, each FROM resolved with the global ARG defaults declared before it,
    and ``build_args`` (``--build-arg``) substituted wherever they are used."""
    given = build_args or {}
    global_args: dict[str, str] = {}
    found: list[Stage] = []
    for instruction in instructions(path):
        if instruction.keyword == "ARG" and not found:
            name, _, default = instruction.arguments.partition("=")
            global_args[name] = given.get(name, default)
        elif instruction.keyword == "FROM":
            words = [w for w in instruction.arguments.split() if not w.startswith("--")]
            base = VARIABLE.sub(lambda m: global_args.get(m[1], m[0]), words[0])
            stage_name = words[2] if len(words) > 2 and words[1].upper() == "AS" else None
            found.append(Stage(base, stage_name, []))
        elif found:
            arguments = VARIABLE.sub(lambda m: given.get(m[1], m[0]), instruction.arguments)
            found[-1].instructions.append(Instruction(instruction.keyword, arguments))
    return found


def image_stages(path: Path, target: str, build_args: dict[str, str]) -> list[Stage]:
    """What ``docker build --target`` builds: the stages the target needs, in order, the last
    one the image itself (the target with every stage it is built FROM folded in, so its base
    is a real image and its instructions are all the image's own)."""
    by_name = {stage.name: stage for stage in stages(path, build_args) if stage.name}
    chain = [by_name[target]]
    while chain[0].base in by_name:
        chain.insert(0, by_name[chain[0].base])
    image = Stage(chain[0].base, target, [i for stage in chain for i in stage.instructions])
    # And the stages it copies from (the build stage), and the ones those copy from (uv).
    needed: set[str] = set()
    pending = [image]
    while pending:
        for copy in pending.pop().all("COPY"):
            source = copy.split()[0].removeprefix("--from=")
            if copy.startswith("--from=") and source in by_name and source not in needed:
                needed.add(source)
                pending.append(by_name[source])
    return [stage for stage in by_name.values() if stage.name in needed] + [image]
