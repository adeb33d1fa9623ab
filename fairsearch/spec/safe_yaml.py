"""YAML read safely: a size limit and an alias-bomb guard, the only way spec and space files are read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

__all__ = ["MAX_YAML_BYTES", "read_yaml"]

#: Largest spec or space file read, in bytes (a guard against hostile files).
MAX_YAML_BYTES = 1_000_000


def read_yaml(path: Path, what: str) -> Any:
    """``yaml.safe_load`` of a file of at most :data:`MAX_YAML_BYTES`, aliases limited."""
    size = path.stat().st_size
    if size > MAX_YAML_BYTES:
        raise ValueError(f"{what} {str(path)!r} must be at most {MAX_YAML_BYTES} bytes, but has {size}")
    text = path.read_text(errors="replace")
    try:
        return yaml.load(text, Loader=_LimitedLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc) or type(exc).__name__
        raise ValueError(f"{what} {str(path)!r} is not valid YAML{where}: {problem}") from None


class _LimitedLoader(yaml.SafeLoader):
    """A SafeLoader that refuses more than a few alias expansions and documents whose nodes,
    every alias expanded, exceed :attr:`MAX_NODES` (a billion-laughs guard: a few nested aliases
    make a small file expand to millions of nodes, which anything walking it then pays for).
    The expanded size is counted once per distinct node, so the count itself costs no more than
    the file; a node that contains itself is refused too."""

    MAX_ALIASES = 100
    MAX_NODES = 200_000

    def get_single_node(self) -> Any:
        node = super().get_single_node()
        if node is not None:
            _expanded_size(node, self.MAX_NODES)
        return node

    def compose_node(self, parent: Any, index: Any) -> Any:  # type: ignore[override]
        if self.check_event(yaml.AliasEvent):
            self.aliases_seen = getattr(self, "aliases_seen", 0) + 1
            if self.aliases_seen > self.MAX_ALIASES:
                mark = self.peek_event().start_mark
                raise yaml.YAMLError(
                    f"more than {self.MAX_ALIASES} YAML aliases (at line {mark.line + 1}): "
                    "refused as a possible alias bomb"
                )
        return super().compose_node(parent, index)


def _expanded_size(root: yaml.Node, limit: int) -> int:
    """Nodes of ``root`` with every alias expanded; ``YAMLError`` above ``limit`` or on a cycle."""
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            on_path.discard(key)
            children = _children(node)
            sizes[key] = 1 + sum(sizes[id(c)] for c in children)
            if sizes[key] > limit:
                mark = node.start_mark
                raise yaml.YAMLError(
                    f"more than {limit} YAML nodes once aliases are expanded (at line "
                    f"{mark.line + 1}): refused as a possible alias bomb"
                )
            continue
        if key in sizes:
            continue
        if key in on_path:
            raise yaml.YAMLError(f"a YAML alias that contains itself (at line "
                                 f"{node.start_mark.line + 1}): refused")  # fmt: skip
        on_path.add(key)
        stack.append((node, True))
        stack.extend((c, False) for c in _children(node) if id(c) not in sizes)
    return sizes[id(root)]


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []

