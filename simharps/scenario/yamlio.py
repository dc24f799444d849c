"""YAML reading with line numbers, with ``yaml.safe_load`` semantics and size limits.

The text is composed into nodes by a ``yaml.SafeLoader`` subclass and converted to plain Python
data here, node by node, so that every mapping key and value keeps the line it came from. Only the
standard YAML tags are accepted (scalars go through ``SafeConstructor``, which refuses
``!!python/...`` and unknown tags): no arbitrary object construction. Differences from
``safe_load``, all stricter: a key repeated in one mapping is an error (``safe_load`` silently keeps
the last one), recursive aliases are refused, and the data is bounded: at most ``MAX_TEXT_CHARS``
characters of text, ``MAX_DEPTH`` levels of nesting, and ``MAX_NODES`` values and ``MAX_TEXT_CHARS``
characters of scalars once every alias is written out (``safe_load`` shares an aliased value, this
loader copies it at every use, so a "billion laughs" file of nested aliases would otherwise grow
without bound, and so would the ``analysis`` sections a dataset manifest copies).

``load_yaml(text, path)`` returns ``(data, lines)``: ``lines`` maps a key path (a tuple of mapping
keys and sequence indices) to the 1-based line of that key (for mapping entries) or item (for
sequence items); ``line_of(lines, location)`` finds the line for the longest known prefix of a path,
which is how error locations (pydantic's ``loc`` tuples included) are mapped onto the file.
"""

import yaml

from simharps.scenario.errors import ScenarioError

_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"

MAX_TEXT_CHARS = 1_000_000
"""Longest scenario text, and most scalar characters once aliases are expanded (shipped scenarios: < 10,000)."""

MAX_DEPTH = 64
"""Deepest nesting of mappings and lists, aliases expanded (the scenario schema needs < 10)."""

MAX_NODES = 100_000
"""Most keys, values and list items once every alias is expanded (the shipped scenarios have < 1,000)."""


class _TooDeep(Exception):
    """Raised by the composer at the node that nests deeper than MAX_DEPTH."""

    def __init__(self, mark):
        super().__init__()
        self.line = mark.line + 1


class LineSafeLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` used only to compose nodes and construct scalars (keeps safe_load's tag set).

    Composition stops at ``MAX_DEPTH`` levels, before Python's recursion limit would.
    """

    def __init__(self, stream):
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent, index):
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _TooDeep(self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _mark_line(node):
    return node.start_mark.line + 1


def _depth_reason():
    return f"mappings and lists nest deeper than {MAX_DEPTH} levels; a scenario needs fewer than 10"


def load_yaml(text, path=None):
    """Parse YAML ``text`` into plain data and a {key path: line} map; ScenarioError on bad or oversized YAML."""
    if len(text) > MAX_TEXT_CHARS:
        raise ScenarioError(f"the scenario text has {len(text):,} characters, more than the {MAX_TEXT_CHARS:,} "
                            "allowed; is this a scenario file?", path=path)
    loader = LineSafeLoader(text)
    try:
        node = loader.get_single_node()
        converter = _Converter(loader, path)
        converter.lines[()] = 1 if node is None else _mark_line(node)
        data = None if node is None else converter.convert(node, (), frozenset())
    except _TooDeep as exc:
        raise ScenarioError(_depth_reason(), path=path, line=exc.line) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = None if mark is None else mark.line + 1
        reason = " ".join(str(part) for part in (exc.context, exc.problem) if part)
        raise ScenarioError(f"not valid YAML: {reason}", path=path, line=line) from None
    except yaml.YAMLError as exc:
        raise ScenarioError(f"not valid YAML: {exc}", path=path) from None
    finally:
        loader.dispose()
    return data, converter.lines


class _Converter:
    """Composed nodes -> plain data, recording lines and counting expanded nodes (aliases at every use)."""

    def __init__(self, loader, path):
        self.loader, self.path = loader, path
        self.lines = {}
        self.nodes = self.chars = 0

    def fail(self, reason, node):
        raise ScenarioError(reason, path=self.path, line=_mark_line(node))

    def convert(self, node, key_path, active):
        """Plain data of ``node`` at ``key_path``; ``active``: ids of the collections being converted above it."""
        self.nodes += 1
        if self.nodes > MAX_NODES:
            self.fail(f"the scenario expands to more than {MAX_NODES:,} values (aliases are copied at every use: "
                      "nested aliases multiply); write the values out or use fewer aliases", node)
        if isinstance(node, yaml.ScalarNode):
            self.chars += len(node.value)
            if self.chars > MAX_TEXT_CHARS:
                self.fail(f"the scenario's values expand to more than {MAX_TEXT_CHARS:,} characters (aliases are "
                          "copied at every use); write the values out or use fewer aliases", node)
            return self._scalar(node)
        if len(key_path) >= MAX_DEPTH:
            self.fail(_depth_reason() + " (aliases expanded)", node)
        if id(node) in active:
            self.fail("recursive YAML alias; write the value out", node)
        active = active | {id(node)}
        if isinstance(node, yaml.SequenceNode):
            return self._sequence(node, key_path, active)
        return self._mapping(node, key_path, active)

    def _scalar(self, node):
        """The scalar's Python value; ScenarioError where its tag cannot read it (e.g. a date 2009-02-30)."""
        try:
            return self.loader.construct_object(node)
        except (ValueError, TypeError, AttributeError, OverflowError):
            tag = node.tag.rsplit(":", 1)[-1]
            hint = " (a real date, YYYY-MM-DD or YYYY-MM-DDThh:mm:ss)" if tag == "timestamp" else ""
            self.fail(f"cannot read {node.value!r} as a YAML {tag}; fix the value{hint}", node)

    def _sequence(self, node, key_path, active):
        if node.tag != _SEQ_TAG:
            self.fail(f"YAML tag {node.tag!r} is not allowed; use a plain list", node)
        items = []
        for index, child in enumerate(node.value):
            self.lines[key_path + (index,)] = _mark_line(child)
            items.append(self.convert(child, key_path + (index,), active))
        return items

    def _mapping(self, node, key_path, active):
        if node.tag != _MAP_TAG:
            self.fail(f"YAML tag {node.tag!r} is not allowed; use a plain mapping", node)
        self.loader.flatten_mapping(node)
        mapping = {}
        for key_node, value_node in node.value:
            key = self.convert(key_node, key_path, active)
            if isinstance(key, (list, dict)):
                self.fail("a mapping key must be a plain value", key_node)
            if key in mapping:
                self.fail(f"key {key!r} appears twice in the same mapping; keep one", key_node)
            self.lines[key_path + (key,)] = _mark_line(key_node)
            mapping[key] = self.convert(value_node, key_path + (key,), active)
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
