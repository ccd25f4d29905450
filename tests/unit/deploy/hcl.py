"""The Terraform configuration as plain Python data, read with python-hcl2.

python-hcl2 8 keeps HCL's quotes around names and literal strings (``'"application"'``) and adds
keys of its own (``__is_block__``, ``__comments__``); :func:`plain` removes both, so tests compare
against plain values. Expressions stay as python-hcl2 writes them (``"${var.name}"``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hcl2


def plain(value: Any) -> Any:
    if isinstance(value, dict):
        # python-hcl2's own bookkeeping (__is_block__, __comments__, ...) is not configuration.
        return {plain(k): plain(v) for k, v in value.items() if not k.startswith("__")}
    if isinstance(value, list):
        return [plain(item) for item in value]
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


@dataclass
class TerraformConfig:
    resources: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    data: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    variables: dict[str, dict[str, Any]] = field(default_factory=dict)
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    locals: dict[str, Any] = field(default_factory=dict)
    providers: dict[str, Any] = field(default_factory=dict)
    files: dict[str, dict[str, Any]] = field(default_factory=dict)

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {
            name: body for (kind, name), body in self.resources.items() if kind == resource_type
        }


def load(directory: Path) -> TerraformConfig:
    config = TerraformConfig()
    for path in sorted(directory.glob("*.tf")):
        with path.open(encoding="utf-8") as handle:
            document = plain(hcl2.load(handle))
        config.files[path.name] = document
        for kind, target in (("resource", config.resources), ("data", config.data)):
            for entry in document.get(kind, []):
                for resource_type, named in entry.items():
                    for name, body in named.items():
                        target[(resource_type, name)] = body
        for entry in document.get("variable", []):
            config.variables.update(entry)
        for entry in document.get("output", []):
            config.outputs.update(entry)
        for entry in document.get("locals", []):
            config.locals.update(entry)
        for entry in document.get("provider", []):
            config.providers.update(entry)
    return config


def block(body: dict[str, Any], name: str) -> dict[str, Any]:
    """The single nested block ``name`` of a resource body."""
    blocks = body[name]
    assert isinstance(blocks, list), f"{name} is not a block"
    assert len(blocks) == 1, f"expected one {name} block"
    return dict(blocks[0])
