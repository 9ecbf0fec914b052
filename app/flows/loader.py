"""Load flow files from disk and report every problem as ``file:node: message``."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

import yaml
from pydantic import ValidationError

from app.flows.model import AnyNode, FlowDefinition
from app.flows.validate import Problem, check_flow, review_notes

BAD_NODE_ID = "node id must start with a lowercase letter and use only a-z, 0-9 and _ (at most 64)"
NODE_TYPES = frozenset(
    tag for node in get_args(AnyNode) for tag in get_args(node.model_fields["type"].annotation)
)
"""Every node type's ``type:`` tag, read from the node union so a new type needs no edit here."""


class FlowLoadError(Exception):
    """One or more flow files are invalid; ``problems`` holds each as ``file:node: message``."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid flows:\n" + "\n".join(problems))
        self.problems = problems


@dataclass
class _Source:
    """Which file each node came from, so errors name the file an editor must open."""

    main: Path
    node_files: dict[str, Path] = field(default_factory=dict)

    def file_of(self, node: str) -> Path:
        return self.node_files.get(node, self.main)


def load_flows(directory: Path) -> dict[str, FlowDefinition]:
    """Load and validate every ``*.yaml`` flow in a directory; raise `FlowLoadError` on any problem."""
    flows, problems = _load_all(directory)
    if problems:
        raise FlowLoadError(problems)
    return flows


def lint_flows(directory: Path) -> tuple[list[str], list[str]]:
    """Return (problems, notes) for every flow file in a directory."""
    flows, problems = _load_all(directory)
    notes = [
        f"{_display(directory / f'{flow_id}.yaml')}:(flow): note: {note}"
        for flow_id, flow in flows.items()
        for note in review_notes(flow)
    ]
    return problems, notes


def _load_all(directory: Path) -> tuple[dict[str, FlowDefinition], list[str]]:
    files = sorted(directory.glob("*.yaml"))
    if not files:
        return {}, [f"{_display(directory)}:(flow): no flow files (*.yaml) found"]
    flows: dict[str, FlowDefinition] = {}
    problems: list[str] = []
    for path in files:
        flow, file_problems = _load_file(path)
        problems.extend(file_problems)
        if flow is None:
            continue
        if flow.id in flows:
            problems.append(f"{_display(path)}:(flow): flow id {flow.id!r} is used by another file")
        elif flow.id != path.stem:
            problems.append(f"{_display(path)}:(flow): flow id {flow.id!r} must match the file name")
        else:
            flows[flow.id] = flow
    return flows, problems


def _load_file(path: Path) -> tuple[FlowDefinition | None, list[str]]:
    source = _Source(main=path)
    try:
        data = _read_yaml(path)
        for include in data.get("include", []) or []:
            _merge_include(data, path.parent / str(include), source)
    except _FileProblem as problem:
        return None, [f"{_display(problem.path)}:(flow): {problem.message}"]
    try:
        flow = FlowDefinition.model_validate(data)
    except ValidationError as error:
        return None, [_format_validation(error, source) for error in error.errors()]
    return flow, [_format_problem(problem, source) for problem in check_flow(flow)]


class _FileProblem(Exception):
    def __init__(self, path: Path, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


class _UniqueKeyLoader(yaml.SafeLoader):
    """A YAML loader that refuses duplicate keys, which PyYAML would silently overwrite."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, Hashable):
                continue  # PyYAML's own construct_mapping reports an unhashable key clearly
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate id {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)  # noqa: S506
    except OSError as error:
        raise _FileProblem(path, f"cannot read: {error.strerror}") from error
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        detail = getattr(error, "problem", None) or "not valid YAML"
        raise _FileProblem(path, f"{detail}{where}") from error
    if not isinstance(data, dict):
        raise _FileProblem(path, "must be a YAML mapping")
    return data


def _merge_include(data: dict[str, Any], path: Path, source: _Source) -> None:
    included = _read_yaml(path)
    extra = set(included) - {"nodes"}
    if extra:
        raise _FileProblem(path, f"an included file may only hold 'nodes', found {sorted(extra)}")
    nodes = data.setdefault("nodes", {})
    if not isinstance(nodes, dict) or not isinstance(included.get("nodes"), dict):
        raise _FileProblem(path, "'nodes' must be a mapping")
    for node_id, node in included["nodes"].items():
        if node_id in nodes:
            raise _FileProblem(path, f"node {node_id!r} is already defined in {_display(source.main)}")
        nodes[node_id] = node
        source.node_files[str(node_id)] = path


def _format_validation(error: Any, source: _Source) -> str:
    loc = [str(part) for part in error["loc"]]
    if len(loc) >= 2 and loc[0] == "nodes":
        node, rest = loc[1], loc[2:]
        if rest == ["[key]"]:
            return f"{_display(source.file_of(node))}:{node}: {BAD_NODE_ID}"
        # The discriminator adds the node type to the location; it tells the editor nothing.
        if rest and rest[0] in NODE_TYPES:
            rest = rest[1:]
        field_path = ".".join(rest)
        where = f" ({field_path})" if field_path else ""
        return f"{_display(source.file_of(node))}:{node}: {error['msg']}{where}"
    field_path = ".".join(loc)
    return f"{_display(source.main)}:(flow): {error['msg']} ({field_path})"


def _format_problem(problem: Problem, source: _Source) -> str:
    if problem.node is None:
        return f"{_display(source.main)}:(flow): {problem.message}"
    return f"{_display(source.file_of(problem.node))}:{problem.node}: {problem.message}"


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
