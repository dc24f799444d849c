"""Scenario files that must fail with one clear ScenarioError (file, line, fix), and a seeded fuzz pass over values."""

import ast
import copy
import re
import subprocess
import sys
import textwrap
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import yaml

from simharps.errors import SimharpsError
from simharps.scenario import PARAMETERS, Scenario, ScenarioError, load_scenario, sample_population
from simharps.scenario import budget
from simharps.scenario.yamlio import MAX_DEPTH

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "scenarios.md"
SCENARIO_DIR = ROOT / "simharps" / "scenario"

BASE = """\
name: t
seed: 5
population:
  n_targets: 2
  epochs_per_target: 2
"""


def error_of(text):
    with pytest.raises(ScenarioError) as info:
        Scenario.from_yaml(text, path="s.yaml")
    return info.value


# ------------------------------------------------------------------------------------------ YAML size limits


def alias_bomb(levels=9):
    """A "billion laughs" analysis section: 9 aliases per level, ``levels`` levels (9^9 values when expanded)."""
    names = "abcdefghijklmnop"
    lines = ["analysis:", f"  {names[0]}: &{names[0]} [x, x, x, x, x, x, x, x, x]"]
    for upper, lower in zip(names[1:levels], names[:levels - 1]):
        lines.append(f"  {upper}: &{upper} [" + ", ".join([f"*{lower}"] * 9) + "]")
    return BASE + "\n".join(lines) + "\n"


def test_alias_bomb_is_refused_at_once(tmp_path):
    path = tmp_path / "bomb.yaml"
    path.write_text(alias_bomb())
    start = time.perf_counter()
    with pytest.raises(ScenarioError, match=r"bomb.yaml, line \d+: the scenario expands to more than 100,000 values"):
        load_scenario(path)
    assert time.perf_counter() - start < 1.0


def test_a_few_anchors_and_aliases_still_load():
    scenario = Scenario.from_yaml(BASE + textwrap.dedent("""\
          per_target:
            teff_k: &teff {uniform: [5000 K, 6000 K]}
          per_epoch:
            seeing_arcsec: &seeing {lognormal: {median: 0.9 arcsec, sigma: 0.3}}
        design:
          kind: factorial
          factors: {pwv_mm: &levels [1 mm, 8 mm]}
        analysis:
          preprocessing: &prep {recipe: window, start_aa: 5160.0, n_pixels: 4096}
          models:
            - {name: a, kind: pca, latent_dim: 1, preprocessing: *prep}
            - {name: b, kind: pca, latent_dim: 2, preprocessing: *prep}
        """))
    assert scenario.plan.factors["pwv_mm"] == [1.0, 8.0]
    assert scenario.analysis["models"][1]["preprocessing"]["n_pixels"] == 4096


def test_deep_nesting_and_huge_expansions_are_refused():
    deep = BASE + "description: " + "[" * 5000 + "]" * 5000 + "\n"
    error = error_of(deep)
    assert error.line == 6 and f"nest deeper than {MAX_DEPTH} levels" in str(error)
    inner = "[" * 40 + "]" * 40
    error = error_of(BASE + f"analysis:\n  preprocessing:\n    a: &a {inner}\n    b: {'[' * 30}*a{']' * 30}\n")
    assert "aliases expanded" in str(error)
    long = BASE + f"analysis:\n  preprocessing: {{a: &a {'x' * 600_000}, b: *a}}\n"
    assert "expand to more than 1,000,000 characters" in str(error_of(long))
    assert "more than the 1,000,000 allowed" in str(error_of(BASE + "#" * 1_000_001))
    if Path("/dev/zero").exists():  # an endless file is read no further than the limit
        with pytest.raises(ScenarioError, match="more than the 1,000,000 allowed"):
            load_scenario("/dev/zero")


# ---------------------------------------------------------------------------------------- population sizes


def test_ten_million_targets_are_refused_with_the_memory_estimate(monkeypatch):
    monkeypatch.setattr("simharps.scenario.schema.physical_memory_bytes", lambda: 32e9)
    start = time.perf_counter()
    error = error_of("name: t\nseed: 1\npopulation: {n_targets: 10000000}\n")
    assert time.perf_counter() - start < 5.0
    assert error.line == 3 and error.location == "population.n_targets"
    assert "population of 10,000,000 spectra needs ~160 GB for its table; this machine has 32 GB" in str(error)
    assert "lower n_targets or epochs_per_target" in str(error)


def test_ten_billion_spectra_are_refused_before_any_allocation():
    error = error_of("name: t\nseed: 1\npopulation: {n_targets: 100000, epochs_per_target: 100000}\n")
    assert "population of 10,000,000,000 spectra is more than the 10,000,000 allowed" in str(error)
    assert "needs ~160,000 GB for its table" in str(error) and error.line == 3


def test_the_table_estimate_bounds_the_measured_peak():
    scenario = Scenario.from_yaml(BASE.replace("n_targets: 2", "n_targets: 500"))
    sample_population(Scenario.from_yaml(BASE))  # warm the ephemeris and astropy caches
    tracemalloc.start()
    sample_population(scenario)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < budget.table_bytes(scenario.n_spectra)


def test_storage_estimate_and_disk_check(tmp_path, monkeypatch):
    scenario = Scenario.from_yaml(BASE + "output: {window: [5000 A, 5100 A], components: true}\n")
    assert scenario.n_channels == 10001
    assert scenario.storage_bytes == 4 * 10001 * 5 * 2
    scenario.check_disk(tmp_path / "not" / "yet")
    monkeypatch.setattr("simharps.scenario.schema.free_disk_bytes", lambda directory: 1000)
    with pytest.raises(ScenarioError, match=r"needs up to 0.0004 GB \(uncompressed\), but only 1e-06 GB are free"):
        scenario.check_disk(tmp_path)


# ------------------------------------------------------------------------------------------- CCD gap


def test_window_inside_the_ccd_gap_is_refused_with_its_edges():
    error = error_of(BASE + "output: {window: [5310 A, 5330 A]}\n")
    assert error.line == 6 and error.location == "output.window"
    assert re.search(r"no HARPS order reaches 5304\.9\d to 5336\.6\d A \(the gap between the blue and red CCDs\)",
                     str(error))
    error = error_of(BASE + "output: {window: [3781 A, 3781.05 A]}\n")
    assert "3781.00 to 3781.10 A (beyond the last order)" in str(error)


def test_window_straddling_the_gap_edge_is_accepted():
    assert Scenario.from_yaml(BASE + "output: {window: [5300 A, 5320 A]}\n").window_aa == (5300.0, 5320.0)
    assert Scenario.from_yaml(BASE + "output: {window: [5330 A, 5340 A]}\n").window_aa == (5330.0, 5340.0)


# --------------------------------------------------------------------------------- ranges and the docs


def test_a_value_outside_the_valid_range_is_refused_with_its_line():
    error = error_of(BASE + "  per_target:\n    vmag: 22 mag\n")
    assert error.line == 7 and error.location == "population.per_target.vmag"
    assert "outside its valid range, from -2 to 20 mag" in str(error)
    error = error_of(BASE + "  per_target:\n    mh_dex: {normal: {mean: -0.1, sigma: 0.2}}\n")
    assert error.line == 7 and "from -4 to 1 dex" in str(error)


def _docs_parameter_rows():
    text = DOCS.read_text()
    table = text[text.index("| name | unit | level | valid range | default |"):].split("\n\n")[0]
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in table.splitlines()[2:]]
    return {row[0].strip("`"): row for row in rows}


def _range(text):
    low, high = text.split(" to ")
    return float(low), float(high)


def test_docs_parameter_table_matches_the_code():
    rows = _docs_parameter_rows()
    assert sorted(rows) == sorted(PARAMETERS)
    for name, (_, _, level, valid, _) in rows.items():
        spec = PARAMETERS[name]
        assert level == spec.level, name
        if spec.is_string:
            assert tuple(re.findall(r"`([^`]+)`", valid)) == spec.choices, name
            continue
        match = re.fullmatch(r"(\S+ to \S+)(?: \(builtin (\S+ to \S+)\))?", valid)
        assert match, f"{name}: write the range as 'LOW to HIGH', got {valid!r}"
        assert _range(match.group(1)) == spec.valid, name
        documented_builtin = None if match.group(2) is None else _range(match.group(2))
        expected_builtin = spec.builtin if spec.builtin not in (None, spec.valid) else None
        assert documented_builtin == (None if expected_builtin is None else tuple(expected_builtin)), name


def _yaml_blocks():
    """Every ```yaml block of docs/scenarios.md, dedented."""
    return [textwrap.dedent(block) for block in re.findall(r"^ *```yaml\n(.*?)^ *```", DOCS.read_text(), re.M | re.S)]


def _entries(block):
    """A block split into its top-level entries (a key line and its indented continuation), comments dropped."""
    entries = []
    for line in block.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line[0] != " ":
            entries.append(line)
        else:
            entries[-1] += "\n" + line
    return entries


def _minimal_scenario_with(fragment):
    """A small valid scenario with the documented ``fragment`` ({key: value}) put where it belongs."""
    data = {"name": "doc", "seed": 1,
            "population": {"n_targets": 1, "per_target": {"dec_deg": {"isotropic": ["-60 deg", "0 deg"]}}}}
    (key, value), = fragment.items()
    if key in PARAMETERS:
        section = "per_target" if PARAMETERS[key].level == "target" else "per_epoch"
        data["population"].setdefault(section, {})[key] = value
    elif key == "source":
        del data["population"]
        data[key] = value
    elif key == "population":
        value.setdefault("per_target", {}).setdefault("dec_deg", {"isotropic": ["-60 deg", "0 deg"]})
        data[key] = value
    else:
        data[key] = value
    return data


def test_every_yaml_example_in_the_docs_loads():
    blocks = _yaml_blocks()
    assert len(blocks) >= 6
    checked = 0
    for block in blocks:
        for entry in _entries(block):
            fragment = yaml.safe_load(entry)
            scenario = Scenario.from_dict(_minimal_scenario_with(copy.deepcopy(fragment)))
            assert scenario.name == "doc", entry
            checked += 1
    assert checked >= 15


# ----------------------------------------------------------------------------------------- import cycle


def _scenario_modules():
    return sorted(path.stem for path in SCENARIO_DIR.glob("*.py") if path.stem != "__init__")


def _sibling_imports(tree):
    """Names of the simharps.scenario modules a module's syntax tree imports."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("simharps.scenario"):
            module = node.module.removeprefix("simharps.scenario").lstrip(".")
            names.update([module] if module else [alias.name for alias in node.names])
    return names & set(_scenario_modules())


def test_scenario_modules_import_no_cycle_and_nothing_inside_functions():
    graph = {}
    for module in _scenario_modules():
        tree = ast.parse((SCENARIO_DIR / f"{module}.py").read_text())
        for function in ast.walk(tree):
            if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                assert not _sibling_imports(function), f"{module}.{function.name} imports a sibling inside a function"
        graph[module] = _sibling_imports(tree)
    done = set()
    while len(done) < len(graph):
        ready = {module for module, needs in graph.items() if module not in done and needs <= done}
        assert ready, f"import cycle among {sorted(set(graph) - done)}"
        done |= ready


def test_each_scenario_module_imports_in_a_fresh_interpreter():
    script = textwrap.dedent(f"""\
        import importlib, sys
        for module in {_scenario_modules()!r}:
            for name in [n for n in sys.modules if n == "simharps.scenario" or n.startswith("simharps.scenario.")]:
                del sys.modules[name]
            importlib.import_module("simharps.scenario." + module)
        """)
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]


# ----------------------------------------------------------------------------------------------- fuzz


@pytest.mark.parametrize("extra, line, message", [
    ("  per_target:\n    teff_k: nan K\n", 7, "teff_k must be a finite number, got 'nan K'"),
    ("observing: {dates: [2009-02-30, 2010-01-01]}\n", 6, "cannot read '2009-02-30' as a YAML timestamp"),
    ("description: !!float 'x'\n", 6, "cannot read 'x' as a YAML float"),
    ("  per_epoch:\n    exptime_s: {choice: {values: [300 s, 600 s], weights: [.inf, 1]}}\n", 7,
     "finite non-negative weights"),
    ("design: {kind: paired, factor: mjd_utc, deltas: [36500 d]}\n", 6,
     "paired mjd_utc variants reach MJD 89505 to 93673, outside MJD"),
    ("design: {kind: factorail}\n", 6, "unknown kind 'factorail'; did you mean 'factorial'? Kinds: random"),
    ("  per_target:\n    teff_k: {unifrom: [5000 K, 6000 K]}\n", 7, "unknown distribution 'unifrom'; did you mean"),
    ("instrument: {site: lasila}\n", 6, "unknown site 'lasila'; did you mean 'lasilla'?"),
    ("analysis:\n  split: {yb: target}\n", 7, "unknown key 'yb'; allowed here: by, fractions, seed"),
])
def test_fuzz_findings_are_scenario_errors_with_lines(extra, line, message):
    error = error_of(BASE + extra)
    assert error.line == line and message in str(error)


def test_paired_variants_out_of_range_fail_before_their_berv():
    scenario = Scenario.from_yaml(BASE + "design: {kind: paired, factor: ra_deg, deltas: [400 deg]}\n")
    with pytest.raises(ScenarioError, match=r"line 6 \(design\): ra_deg = .* outside the range from 0 to 360 deg"):
        sample_population(scenario)


BAD_VALUES = [None, True, "", "x", [], {}, [1, 2, 3], {"a": 1}, -1, 0, 1.5, 10**30, -1e308, 1e308,
              float("nan"), float("inf"), float("-inf"), "5000 parsec", "nan K", "inf", "1e400", "-0 mag",
              "5800 K K", "12 dex(cm/s2)", "2020-13-45", "full", {"uniform": [1, "x"]}, {"normal": None},
              {"truncated": {"normal": [0, 1]}}, {"choice": []}, {"fixed": [1]}, "main_sequence"]


def _paths(data, prefix=()):
    """Every key path of nested dicts and lists."""
    found = []
    items = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else []
    for key, value in items:
        found.append(prefix + (key,))
        found.extend(_paths(value, prefix + (key,)))
    return found


def _misspell(word, rng):
    """``word`` with one letter dropped, doubled or swapped with the next (never ``word`` itself)."""
    while True:
        i = int(rng.integers(len(word)))
        kind = int(rng.integers(3))
        if kind == 0 and len(word) > 3:
            candidate = word[:i] + word[i + 1:]
        elif kind == 1:
            candidate = word[:i] + word[i] + word[i:]
        else:
            candidate = word[:i] + word[i + 1:i + 2] + word[i] + word[i + 2:] if i + 1 < len(word) else word + "s"
        if candidate != word:
            return candidate


def _mutate(base, rng):
    """(mutated copy of ``base``, misspelled key path or None): one random change at one random place."""
    data = copy.deepcopy(base)
    path = _paths(data)[int(rng.integers(len(_paths(data))))]
    parent = data
    for key in path[:-1]:
        parent = parent[key]
    key = path[-1]
    kind = rng.choice(["value", "value", "value", "misspell", "delete", "extra", "listify", "empty"])
    if kind == "misspell" and isinstance(key, str):
        parent[_misspell(key, rng)] = parent.pop(key)
        return data, path
    if kind == "delete":
        del parent[key]
    elif kind == "extra" and isinstance(parent, dict):
        parent[_misspell(str(key), rng) + "_extra"] = 1
    elif kind == "listify" and isinstance(parent[key], dict):
        parent[key] = list(parent[key].values())
    elif kind == "empty":
        parent[key] = {}
    else:
        parent[key] = copy.deepcopy(BAD_VALUES[int(rng.integers(len(BAD_VALUES)))])
    return data, None


def _is_free_form(path):
    """Keys that are names chosen by the user (a misspelling is another valid name)."""
    return len(path) >= 2 and path[-2] in ("tolerances",)


def test_fuzzed_scenarios_fail_only_with_scenario_errors(tmp_path):
    base = yaml.safe_load((ROOT / "scenarios" / "ci.yaml").read_text())
    rng = np.random.default_rng(20240611)
    start, outcomes = time.perf_counter(), {"loaded": 0, "sampled": 0, "refused": 0}
    for index in range(400):
        data, misspelled = _mutate(base, rng)
        path = tmp_path / f"m{index}.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        try:
            scenario = load_scenario(path)
            outcomes["loaded"] += 1
            assert misspelled is None or _is_free_form(misspelled), f"misspelled {misspelled} was accepted"
            if scenario.kind == "simulated" and scenario.n_spectra <= 8:
                sample_population(scenario)
                outcomes["sampled"] += 1
        except SimharpsError as error:
            outcomes["refused"] += 1
            if misspelled is not None and "unknown" in str(error):
                assert re.search("did you mean|allowed here|drawable", str(error), re.I), str(error)
    assert outcomes["refused"] > 200 and outcomes["loaded"] > 20, outcomes
    assert time.perf_counter() - start < 60.0, outcomes
