"""YAML reading with line numbers, with ``yaml.safe_load`` semantics.

The text is composed into nodes by a ``yaml.SafeLoader`` subclass and converted to plain Python
data here, node by node, so that every mapping key and value keeps the line it came from. Only the
standard YAML tags are accepted (scalars go through ``SafeConstructor``, which refuses
``!!python/...`` and unknown tags): no arbitrary object construction. Two differences from
``safe_load``, both stricter: a key repeated in one mapping is an error (``safe_load`` silently keeps
the last one), and recursive aliases are refused.

``load_yaml(text, path)`` returns ``(data, lines)``: ``lines`` maps a key path (a tuple of mapping
keys and sequence indices) to the 1-based line of that key (for mapping entries) or item (for
sequence items); ``line_of(lines, location)`` finds the line for the longest known prefix of a path,
which is how error locations (pydantic's ``loc`` tuples included) are mapped onto the file.
"""

import yaml

from simharps.scenario.errors import ScenarioError

_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"


class LineSafeLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` used only to compose nodes and construct scalars (keeps safe_load's tag set)."""


def _mark_line(node):
    return node.start_mark.line + 1


def load_yaml(text, path=None):
    """Parse YAML ``text`` into plain data and a {key path: line} map; ScenarioError on bad YAML."""
    loader = LineSafeLoader(text)
    try:
        node = loader.get_single_node()
        lines = {(): 1 if node is None else _mark_line(node)}
        data = None if node is None else _convert(loader, node, (), lines, path, set())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = None if mark is None else mark.line + 1
        reason = " ".join(str(part) for part in (exc.context, exc.problem) if part)
        raise ScenarioError(f"not valid YAML: {reason}", path=path, line=line) from None
    except yaml.YAMLError as exc:
        raise ScenarioError(f"not valid YAML: {exc}", path=path) from None
    finally:
        loader.dispose()
    return data, lines


def _convert(loader, node, key_path, lines, path, active):
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_object(node)
    if id(node) in active:
        raise ScenarioError("recursive YAML alias; write the value out", path=path, line=_mark_line(node))
    active = active | {id(node)}
    if isinstance(node, yaml.SequenceNode):
        if node.tag != _SEQ_TAG:
            raise ScenarioError(f"YAML tag {node.tag!r} is not allowed; use a plain list",
                                path=path, line=_mark_line(node))
        items = []
        for index, child in enumerate(node.value):
            lines[key_path + (index,)] = _mark_line(child)
            items.append(_convert(loader, child, key_path + (index,), lines, path, active))
        return items
    if node.tag != _MAP_TAG:
        raise ScenarioError(f"YAML tag {node.tag!r} is not allowed; use a plain mapping",
                            path=path, line=_mark_line(node))
    loader.flatten_mapping(node)
    mapping = {}
    for key_node, value_node in node.value:
        key = _convert(loader, key_node, key_path, lines, path, active)
        if isinstance(key, (list, dict)):
            raise ScenarioError("a mapping key must be a plain value", path=path, line=_mark_line(key_node))
        if key in mapping:
            raise ScenarioError(f"key {key!r} appears twice in the same mapping; keep one",
                                path=path, line=_mark_line(key_node))
        lines[key_path + (key,)] = _mark_line(key_node)
        mapping[key] = _convert(loader, value_node, key_path + (key,), lines, path, active)
    return mapping


def line_of(lines, location):
    """Line of the longest prefix of ``location`` (a tuple) found in ``lines``; None when ``lines`` is empty."""
    location = tuple(location)
    for end in range(len(location), -1, -1):
        line = lines.get(location[:end])
        if line is not None:
            return line
    return None


def dotted(location):
    """``('a', 'b', 0, 'c')`` -> ``'a.b[0].c'``."""
    text = ""
    for part in location:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text
