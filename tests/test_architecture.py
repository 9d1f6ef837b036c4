"""The import graph keeps its shape: the contracts in pyproject.toml ([tool.importlinter]) hold.

Every arrow points down (growalert → the apps → billing → shared → alerts_core; inside
monitors: entry points → services/selectors/serializers → evaluate → notify | influxdb →
models), alerts_core imports nothing but the standard library, and no package has an import
loop between its modules (imports inside functions count)."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

from tests.conftest import ROOT

LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def test_every_import_contract_is_kept() -> None:
    result = subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_the_contracts_cover_every_package_of_the_project() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    roots = set(config["tool"]["importlinter"]["root_packages"])
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"tests", "bench"}
    assert packages <= roots, f"add {sorted(packages - roots)} to the import contracts"
    [acyclic] = [
        c for c in config["tool"]["importlinter"]["contracts"] if c["type"] == "acyclic_siblings"
    ]
    assert set(acyclic["ancestors"]) == roots
